#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in ../dist (run `pnpm build` first).
import { main } from '../dist/main.js';
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
