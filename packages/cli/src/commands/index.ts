import type { CommandModule } from 'yargs';
import { createCommand } from './create.js';
import { showCommand } from './show.js';

// Each command lives in its own module; register it here.
export const commands: CommandModule<any, any>[] = [createCommand, showCommand];
