/**
 * Jest 30 in native ESM mode (run through `node --experimental-vm-modules`, see package.json).
 * ts-jest compiles TypeScript to ESM; the mapper strips the `.js` suffix NodeNext imports carry.
 * @type {import('jest').Config}
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  roots: ['<rootDir>/lib', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  // Consumer apps' tests, run by test/compat/run.sh in apps made from the packed library.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/compat/'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
  // Checks that redis-server is installed; each test file starts its own servers (test/support).
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  testTimeout: 30000,
  // The machines have 2 cores; test files mostly wait on Redis and child processes.
  maxWorkers: 2,
};
