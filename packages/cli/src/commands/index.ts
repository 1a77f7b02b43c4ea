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
import { serveCommand } from './serve.js'; commands.push(serveCommand);
