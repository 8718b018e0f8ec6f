import type { Kysely, Transaction } from 'kysely';
import type { ClinicianReputation } from '../reputation/reputation.js';
import type { Database } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** Replaces every stored reputation with these, in one transaction (a reader sees the old set or the new one). */
export async function replaceClinicianReputations(db: Kysely<Database>, reputations: readonly ClinicianReputation[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('clinician_reputation').execute();
    // Chunks keep each statement under PostgreSQL's 65,535 bind parameters.
    for (let start = 0; start < reputations.length; start += 5000) {
      await trx
        .insertInto('clinician_reputation')
        .values(
          reputations.slice(start, start + 5000).map((reputation) => ({
            clinician_key: reputation.clinicianKey,
            orders: reputation.orders,
            encounters: reputation.encounters,
            raw_agreement: reputation.rawAgreement,
            agreement: reputation.agreement,
            return_rate_72h: reputation.returnRate72h,
            weight: reputation.weight,
          })),
        )
        .execute();
    }
  });
}

/** Every stored reputation, by clinician key. */
export async function listClinicianReputations(db: Executor): Promise<ClinicianReputation[]> {
  const rows = await db.selectFrom('clinician_reputation').selectAll().orderBy('clinician_key').execute();
  return rows.map((row) => ({
    clinicianKey: row.clinician_key,
    orders: Number(row.orders),
    encounters: Number(row.encounters),
    rawAgreement: row.raw_agreement === null ? null : Number(row.raw_agreement),
    agreement: Number(row.agreement),
    returnRate72h: Number(row.return_rate_72h),
    weight: Number(row.weight),
  }));
}
