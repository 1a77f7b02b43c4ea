/**
 * The one trust and version policy every command applies to a release before
 * it writes it (create, update from a file, stdin, HTTP or a repository,
 * update-esp, self-update, publish's pointer, the repository client): the
 * trusted comment must name the artifact's kind (`type=`), carry a parsable
 * `version=`, and that version must not be older than what is installed.
 * Fails closed: a missing or unparsable version, on either side, is refused
 * unless the caller passes `allowDowngrade` (--allow-downgrade), the one
 * explicit way out. Pure: callers read the signature and the installed
 * version; this decides.
 */
import { InputError } from '@diskimg/partitions/internal';
import { isReleaseVersion, KIND_TYPE, type ReleaseKind } from './repo/layout.js';

/** Why a release was refused (tests and callers branch on this, never on the message). */
export type PolicyRefusal = 'wrong-type' | 'no-version' | 'bad-version' | 'installed-unknown' | 'downgrade' | 'architecture';

/** A release the policy refuses: one line naming the signature and the way out, if there is one. */
export class PolicyError extends InputError {
  override name = 'PolicyError';
  constructor(
    readonly refusal: PolicyRefusal,
    message: string,
  ) {
    super(message);
  }
}

/**
 * What is installed where the release would go:
 *  - `{ version }`: a version read from a verified signature;
 *  - `{ version: null, why }`: unknown (no signature, unreadable, no `version=`, written with
 *    --no-verify): refused unless allowDowngrade;
 *  - `'nothing'`: nothing to compare with (create's fresh image, a repository's first release).
 */
export type Installed = { version: string } | { version: null; why: string } | 'nothing';

export interface PolicyInput {
  kind: ReleaseKind;
  /** The signature as the user named it (path, URL or pointer), for messages. */
  source: string;
  /** The trusted comment's key=value fields; undefined: no signature at all (--no-verify without one). */
  fields: Record<string, string> | undefined;
  /** What the release replaces, and how messages name it ("the booted psyopsOS-A", "the ESP"). */
  installed: Installed;
  installedName: string;
  allowDowngrade?: boolean;
  /** OS releases: the node's architecture; an `architecture=` naming another is refused. */
  arch?: string;
}

/** The accepted release: its version (null when unsigned and allowed) and how it relates to the installed one. */
export interface PolicyDecision {
  version: string | null;
  /** 'same' is for the caller to judge (update: --force; update --repo, self-update: up to date). */
  relation: 'new' | 'newer' | 'same' | 'older' | 'unknown';
}

const WAY_OUT = 'pass --allow-downgrade to install it anyway';

/** Apply the policy: a decision, or a PolicyError with a one-line message. */
export function checkRelease(p: PolicyInput): PolicyDecision {
  const type = KIND_TYPE[p.kind];
  const f = p.fields;
  if (f) {
    if (f.type !== type) {
      throw new PolicyError('wrong-type', `${p.source}: the trusted comment says type=${f.type ?? '(none)'}, not type=${type}: this is not ${ARTICLE[p.kind]}; refused`);
    }
    if (p.kind === 'os' && p.arch && f.architecture && f.architecture !== p.arch) {
      throw new PolicyError('architecture', `${p.source}: built for architecture=${f.architecture}, this node is ${p.arch}; get the ${p.arch} build`);
    }
  }
  const version = f?.version;
  if (version === undefined || !isReleaseVersion(version)) {
    if (p.allowDowngrade) return { version: null, relation: 'unknown' };
    const what = !f
      ? 'has no signature, so no version'
      : version === undefined
        ? 'has no version= in its trusted comment'
        : `has version=${JSON.stringify(version)}, which is not a release version (YYYYMMDD-HHMMSS)`;
    throw new PolicyError(version === undefined ? 'no-version' : 'bad-version', `${p.source}: ${what}, so it cannot be ordered against ${p.installedName}; ${WAY_OUT}`);
  }
  const inst = p.installed;
  if (inst === 'nothing') return { version, relation: 'new' };
  if (inst.version === null || !isReleaseVersion(inst.version)) {
    if (p.allowDowngrade) return { version, relation: 'unknown' };
    const why = inst.version === null ? inst.why : `its version ${JSON.stringify(inst.version)} is not a release version`;
    throw new PolicyError('installed-unknown', `${p.source}: the version of ${p.installedName} is unknown (${why}), so ${version} may be older; ${WAY_OUT}`);
  }
  if (version < inst.version) {
    if (p.allowDowngrade) return { version, relation: 'older' };
    throw new PolicyError('downgrade', `${p.source}: version ${version} is older than ${p.installedName} (${inst.version}); ${WAY_OUT}`);
  }
  return { version, relation: version === inst.version ? 'same' : 'newer' };
}

const ARTICLE: Record<ReleaseKind, string> = { os: 'an OS update', esp: 'an ESP update', bundle: 'a diskimg bundle' };
