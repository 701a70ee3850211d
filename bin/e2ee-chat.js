#!/usr/bin/env node
// Entry point of the `e2ee-chat` command: the compiled CLI lives in dist/ (built by `npm run build`,
// which `npm install` runs through the `prepare` script).
import '../dist/src/cli/main.js';
