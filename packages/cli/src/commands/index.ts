import type { CommandModule } from 'yargs';

// Each command lives in its own module; register it here.
export const commands: CommandModule<any, any>[] = [];
