export * from '../protocol/errors.js';
export * from './database.js';
export * from '../db/migrations.js';
export * from './event-log.js';
export * from './event-validation.js';
export * from './snapshots.js';
export * from './order-repository.js';
export * from './local-store.js';
