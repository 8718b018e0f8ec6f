// `node --import ./test/helpers/run-typescript.mjs file.ts`: runs TypeScript sources unbuilt (see typescript-hooks.mjs).
import { register } from 'node:module';

register('./typescript-hooks.mjs', import.meta.url);
