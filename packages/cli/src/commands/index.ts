/**
 * The command list. To add a command: write commands/NAME.ts exporting a yargs CommandModule and
 * add it at the end: `import { nameCommand } from './name.js'; commands.push(nameCommand);`.
 *
 * Start-up (issue 13/14): this list is imported for every command line that reaches yargs
 * (`--help`, completion, any command), so a command module keeps its top level cheap: `import
 * type` from the packages, option tables, its own small helpers, `@diskimg/partitions` (errors,
 * sizes: loaded anyway by the CLI). What the command *does* comes in its handler:
 *
 *   handler: async (argv) => {
 *     const { updateSlot } = await import('@diskimg/ab/internal');
 *     …
 *   },
 *
 * so `diskimg show` does not load tar, crypto or the update code, and `--help` no package but
 * partitions.
 * test/startup.test.ts checks this rule on every file here. `status` also has a fast path that
 * runs its handler without yargs (../fast.ts).
 */
import type { CommandModule } from 'yargs';
import { createCommand } from './create.js';
import { showCommand } from './show.js';
import { signCommand } from './sign.js';
import { verifyCommand } from './verify.js';
import { keygenCommand } from './keygen.js';
import { lsCommand } from './ls.js';
import { catCommand } from './cat.js';

// Each command lives in its own module; register it here.
export const commands: CommandModule<any, any>[] = [createCommand, showCommand, signCommand, verifyCommand, keygenCommand];
commands.push(lsCommand, catCommand);
import { setDefaultCommand } from './set-default.js';
commands.push(setDefaultCommand);
import { updateCommand } from './update.js';
import { bootDiskCommand } from './boot-disk.js';
commands.push(updateCommand, bootDiskCommand);
import { markGoodCommand } from './mark-good.js';
import { rollbackCommand } from './rollback.js';
import { statusCommand } from './status.js';
import { setNextCommand } from './set-next.js';
commands.push(setNextCommand, markGoodCommand, rollbackCommand, statusCommand);
import { diffCommand } from './diff.js';
commands.push(diffCommand);
import { addRepoCommands } from './repo.js';
addRepoCommands(commands);
import { pushCommand } from './push.js';
commands.push(pushCommand);
import { selfUpdateCommand } from './self-update.js';
commands.push(selfUpdateCommand);
import { serveCommand } from './serve.js'; commands.push(serveCommand);
import { packagesCommand } from './packages.js';
commands.push(packagesCommand);
import { markBadCommand } from './mark-bad.js';
commands.push(markBadCommand);
import { addCreateRepo } from './create-repo.js';
addCreateRepo(commands); // create --repo URL|DIR [--version V] [--arch A] [--fwtype T]
import { releasesCommand } from './releases.js';
commands.push(releasesCommand);
import { addHttpOptions } from './http-options.js';
addHttpOptions(commands); // last: --http-timeout, --min-rate, --stall-window on the commands that download
