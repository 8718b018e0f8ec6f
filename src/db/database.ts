import type { ColumnType, Generated, JSONColumnType } from 'kysely';

/** Column types of the schema made by migrations/; kept by hand in step with them. */
export interface Database {
  rule_set: RuleSetTable;
  complaint_concept: ComplaintConceptTable;
  complaint_synonym: ComplaintSynonymTable;
  icd10_code: Icd10CodeTable;
  icd9_to_icd10: Icd9ToIcd10Table;
  cohort_encounter: CohortEncounterTable;
  encounter_item: EncounterItemTable;
  lab_draw: LabDrawTable;
  lab_panel: LabPanelTable;
  lab_panel_member: LabPanelMemberTable;
  issued_card: IssuedCardTable;
  feedback: FeedbackTable;
  ingest_run: IngestRunTable;
}

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
/** A text[] column with a '{}' default. */
type TextArray = ColumnType<string[], string[] | undefined, string[]>;

export interface RuleSetTable {
  version: number;
  status: 'draft' | 'active' | 'retired';
  rules: JSONColumnType<Record<string, unknown>, string, string>;
  note: string | null;
  created_at: CreatedAt;
  created_by: string;
  activated_at: Date | null;
}

export interface ComplaintConceptTable {
  concept: string;
  display: string;
}

export interface ComplaintSynonymTable {
  phrase: string;
  concept: string;
  created_at: CreatedAt;
  created_by: string;
}

export interface Icd10CodeTable {
  code: string;
  billable: boolean;
  short_description: string;
  long_description: string;
}

export interface Icd9ToIcd10Table {
  icd9_code: string;
  icd10_code: string;
}

export interface CohortEncounterTable {
  encounter_key: string;
  patient_key: string;
  site: ColumnType<string, string | undefined, string>;
  age_years: number;
  sex: string;
  acuity: number | null;
  chief_complaint_text: string | null;
  complaint_concepts: TextArray;
  icd10_codes: TextArray;
  icd10_categories: TextArray;
  history_icd10_codes: TextArray;
  start_year: number;
  disposition: string | null;
  admitted: boolean;
  ed_los_minutes: number | null;
  hospital_los_minutes: number | null;
  returned_72h: boolean;
  returned_30d: boolean;
  ingested_at: CreatedAt;
}

export interface EncounterItemTable {
  encounter_key: string;
  item_code: string;
  category: 'workup' | 'treatment';
  kind: string;
  display: string;
  /** The source coding, for the FHIR resource a suggestion creates. */
  code_system: string | null;
  code: string | null;
  offset_minutes: number | null;
  clinician_key: string | null;
}

export interface LabDrawTable {
  encounter_key: string;
  draw_key: string;
  /** The analyte's encounter_item.item_code, e.g. 'lab:50912'. */
  analyte_code: string;
}

export interface LabPanelTable {
  panel_code: string;
  display: string;
  analyte_codes: string[];
}

export interface LabPanelMemberTable {
  /** The analyte's encounter_item.item_code, e.g. 'lab:50912'. */
  analyte_code: string;
  panel_code: string;
}

export interface IssuedCardTable {
  card_uuid: string;
  service_id: string;
  hook_instance: string;
  card_kind: string;
  rules_version: number;
  suggestion_uuids: TextArray;
  item_codes: TextArray;
  issued_at: CreatedAt;
}

export interface FeedbackTable {
  feedback_id: Generated<string>;
  card_uuid: string;
  service_id: string;
  outcome: 'accepted' | 'overridden';
  accepted_suggestions: JSONColumnType<Array<{ id: string }>, string, string>;
  override_reason: JSONColumnType<Record<string, unknown> | null, string | null, string | null>;
  outcome_timestamp: ColumnType<Date, Date | string, Date | string>;
  received_at: CreatedAt;
}

export interface IngestRunTable {
  ingest_run_id: Generated<string>;
  started_at: CreatedAt;
  finished_at: Date | null;
  source: string;
  counts: JSONColumnType<Record<string, number>, string, string>;
}
