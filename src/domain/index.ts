export * from './currencies.js';
export * from './money.js';
export * from './events.js';
export * from './upcasters.js';
export * from './state.js';
export * from './commands.js';
export * from './seed-dialect.js';
