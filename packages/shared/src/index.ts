export * from './errors.ts';
export * from './schemas/admin.ts';
export * from './schemas/auth.ts';
export * from './schemas/common.ts';
export * from './schemas/files.ts';
export * from './schemas/nodes.ts';
export * from './schemas/shares.ts';
export * from './schemas/uploads.ts';
