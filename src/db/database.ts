import type { ColumnType, Generated, JSONColumnType } from 'kysely';

/** Column types of the schema made by migrations/; kept by hand in step with them. */
export interface Database {
  rule_set: RuleSetTable;
  complaint_concept: ComplaintConceptTable;
  complaint_synonym: ComplaintSynonymTable;
  icd10_code: Icd10CodeTable;
  icd9_to_icd10: Icd9ToIcd10Table;
  icd10_description_word: Icd10DescriptionWordTable;
  cohort_encounter: CohortEncounterTable;
  encounter_item: EncounterItemTable;
  lab_draw: LabDrawTable;
  lab_panel: LabPanelTable;
  lab_panel_member: LabPanelMemberTable;
  issued_card: IssuedCardTable;
  feedback: FeedbackTable;
  ingest_run: IngestRunTable;
  api_key: ApiKeyTable;
  audit_event: AuditEventTable;
  hook_call: HookCallTable;
  evaluation_run: EvaluationRunTable;
  ingest_run_batch: IngestRunBatchTable;
  patient_opt_out: PatientOptOutTable;
  clinician_reputation: ClinicianReputationTable;
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

/** The words of the ICD-10-CM descriptions, numbers left out (filled with icd10_code: loadCodeTables). */
export interface Icd10DescriptionWordTable {
  word: string;
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
  /** The analytes measured on the specimen, sorted: their encounter_item.item_code, e.g. 'lab:50912'. */
  analyte_codes: string[];
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
  /** The cohort's primary complaint concept; null for cards issued before migration 0007 or without one. */
  complaint_concept: ColumnType<string | null, string | null | undefined, string | null>;
  /** Displays of item_codes, same order. */
  item_displays: TextArray;
  /** The override reasons the card offered (CDS Hooks Codings). */
  override_reasons: JSONColumnType<Array<{ system?: string; code: string; display?: string }>, string | undefined, string>;
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
  /** Inputs, options and hashing key of the run: an unfinished run with the same one is resumed. */
  fingerprint: ColumnType<string | null, string | null | undefined, string | null>;
  /** Where the run staged its input, kept until it finishes. */
  staging_directory: ColumnType<string | null, string | null | undefined, string | null>;
}

export type ApiKeyRole = 'informaticist' | 'viewer';

export interface ApiKeyTable {
  api_key_id: Generated<number>;
  name: string;
  role: ApiKeyRole;
  key_hash: string;
  key_prefix: string;
  created_at: CreatedAt;
  created_by: string;
  revoked_at: Date | null;
}

export interface AuditEventTable {
  audit_event_id: Generated<string>;
  at: CreatedAt;
  actor: string;
  action: string;
  target: string | null;
  details: JSONColumnType<Record<string, unknown>, string | undefined, string>;
}

export interface HookCallTable {
  hook_call_id: Generated<string>;
  at: CreatedAt;
  service_id: string;
  hook: string;
  rules_version: number;
  cohort_size: number | null;
  relaxation: TextArray;
  cards: number;
  latency_ms: number;
}

export type EvaluationStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface EvaluationRunTable {
  evaluation_run_id: Generated<string>;
  rules_version: number;
  status: EvaluationStatus;
  options: JSONColumnType<Record<string, unknown>, string, string>;
  progress: JSONColumnType<Record<string, unknown>, string | undefined, string>;
  result: JSONColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  error: string | null;
  requested_by: string;
  created_at: CreatedAt;
  started_at: Date | null;
  finished_at: Date | null;
  /** Beaten while a process runs it; a running run with an old heartbeat lost its process. */
  heartbeat_at: Date | null;
  /** Opt-outs that removed encounters after the run started: its figures may count those patients (docs/privacy.md). */
  opt_outs_after_start: Generated<number>;
  first_opt_out_after_start_at: Date | null;
}

/** One batch of patients an ingest run has stored, written in the same transaction as its rows. */
export interface IngestRunBatchTable {
  ingest_run_id: string;
  batch: number;
  counts: JSONColumnType<Record<string, number>, string, string>;
  finished_at: CreatedAt;
}

export type OptOutSource = 'consent' | 'api';

/** A patient excluded from the cohort, by keyed hash only (migrations/20261123T0004_privacy.ts). */
export interface PatientOptOutTable {
  patient_key: string;
  source: OptOutSource;
  opted_out_at: CreatedAt;
  /** The API key's name, or `ingest` / `cli`. */
  recorded_by: string;
}

/** One ordering clinician's reputation, by keyed hash only (migrations/20261123T0008_clinician_reputation.ts). */
export interface ClinicianReputationTable {
  clinician_key: string;
  orders: number;
  encounters: number;
  raw_agreement: number | null;
  agreement: number;
  return_rate_72h: number;
  weight: number;
  computed_at: CreatedAt;
}
