// @ts-check
/**
 * The admin API's answers as the console reads them (JSDoc only; never loaded by the browser). The backtest's
 * result is the server's own type, so a change to its shape fails this folder's type-check, not a page.
 */

/** @typedef {'viewer' | 'informaticist'} Role */
/** @typedef {{ name: string, role: Role }} Identity */

/**
 * @typedef {object} RuleVersion
 * @property {number} version
 * @property {'draft' | 'active' | 'retired'} status
 * @property {string | null} note
 * @property {string} createdAt
 * @property {string} createdBy
 * @property {string | null} activatedAt
 * @property {Record<string, unknown>} rules
 * @property {Record<string, unknown> | null} effectiveRules
 * @property {Activation | null} [activation]
 */
/**
 * Whether a version can be activated now: a draft needs a backtest since its last change (or force with a reason).
 * @typedef {object} Activation
 * @property {'active' | 'rollback' | 'backtested' | 'not-backtested'} kind
 * @property {boolean} allowed
 * @property {string} reason
 * @property {string | null} backtestRunId
 */
/** @typedef {{ active: number | null, versions: RuleVersion[] }} RulesList */
/** @typedef {{ path: string, message: string }} FieldIssue */
/** @typedef {{ valid: boolean, rules: Record<string, unknown> | null, issues: FieldIssue[] }} Validation */

/**
 * A JSON Schema of one rules field (the subset zod emits for the rules).
 * @typedef {object} FieldSchema
 * @property {string} [type]
 * @property {unknown} [default]
 * @property {number} [minimum]
 * @property {number} [maximum]
 * @property {number} [exclusiveMinimum]
 * @property {string[]} [enum]
 * @property {FieldSchema} [items]
 * @property {FieldSchema[]} [anyOf]
 */
/** @typedef {{ schema: { properties: Record<string, FieldSchema> }, relaxationSteps: Array<{ step: string, description: string }> }} RulesSchema */

/** @typedef {{ label: string, url: string, type: string }} CardLink */
/** @typedef {{ label: string, uuid: string, isRecommended?: boolean }} CardSuggestion */
/**
 * A CDS Hooks 2.0 card (https://cds-hooks.hl7.org/2.0/#card-attributes).
 * @typedef {object} Card
 * @property {string} uuid
 * @property {string} summary
 * @property {string} [detail]
 * @property {'info' | 'warning' | 'critical'} indicator
 * @property {{ label: string, url?: string }} source
 * @property {CardSuggestion[]} [suggestions]
 * @property {string} [selectionBehavior]
 * @property {CardLink[]} [links]
 */
/**
 * @typedef {object} Preview
 * @property {number} rulesVersion
 * @property {{ ageYears: number | null, sex: string | null, complaintConcepts: string[], icd10Codes: string[], acuity: number | null }} facts
 * @property {number | null} cohortSize
 * @property {string[]} relaxation
 * @property {unknown} criteria
 * @property {number[]} sizesTried
 * @property {string | null} noCohortReason
 * @property {Card[]} cards
 */

/** @typedef {{ code: string, display: string, billable: boolean }} Icd10Code */
/** @typedef {{ concept: string, display: string, phrases: string[] }} ComplaintConcept */
/** @typedef {{ phrase: string, encounters: number, unmatchedEncounters: number }} UnmappedComplaint */
/** @typedef {{ complaintConcept: string | null, ageBand: string, sex: string, encounters: number | null }} CohortCell */
/** @typedef {{ minCellSize: number, total: number, cells: CohortCell[] }} CohortSummary */
/** @typedef {{ id: string, at: string, actor: string, action: string, target: string | null, details: Record<string, unknown> }} AuditEvent */
/**
 * @typedef {object} HookCallSummary
 * @property {string} serviceId
 * @property {number} rulesVersion
 * @property {number} calls
 * @property {number} withCards
 * @property {number} relaxed
 * @property {number | null} medianLatencyMs
 * @property {number | null} p95LatencyMs
 */

/** @typedef {import('../../../evaluate/result.js').EvaluationResult} EvaluationResult */
/** @typedef {import('../../../evaluate/result.js').MethodResult} MethodResult */
/** @typedef {import('../../../evaluate/result.js').Estimate} Estimate */
/** @typedef {import('../../../evaluate/result.js').OutcomeMetrics} OutcomeMetrics */
/**
 * A backtest run as GET /admin/evaluations/:id answers it.
 * @typedef {object} EvaluationRun
 * @property {string} id
 * @property {number} rulesVersion
 * @property {'queued' | 'running' | 'succeeded' | 'failed'} status
 * @property {Partial<import('../../../evaluate/result.js').EvaluationOptions>} options
 * @property {{ phase?: string, done: number, total: number }} progress
 * @property {EvaluationResult | null} result
 * @property {string | null} error
 * @property {string} [requestedBy]
 * @property {string} createdAt
 * @property {string | null} startedAt
 * @property {string | null} finishedAt
 */

export {};
