export * from './errors.js';
export * from './http-client.js';
export * from './sync-repository.js';
export * from './rebase.js';
export * from './outbox.js';
export * from './pending-source.js';
export * from './sync-engine.js';
export * from './scheduler.js';
