/**
 * `@diskimg/ab`, the public API: build a psyopsOS image, inspect and compare disks, update a slot
 * or the ESP (from files, URLs or an update repository), boot counting (trial, mark-good,
 * rollback), minisign keys and signatures, publishing releases and self-update of the one-file
 * CLI. Everything else is internal (`@diskimg/ab/internal`).
 */
// minisign.
export { writeKeyPair, type KeygenResult } from './minisign/keygen.js';
export { signFile, readSecretKeyFile, type SignOptions } from './minisign/sign.js';
export { verifyFile, MinisignVerifier, readPublicKeyFile, readSignatureFile, type FileInput, type VerifyNames, type VerifyResult } from './minisign/verify.js';
export { decodePublicKey, keyIdHex, type PublicKey, type SecretKey } from './minisign/keys.js';
export { decodeSignature, encodeSignature, type Signature } from './minisign/signature.js';
export { parseTrustedComment, formatTrustedComment } from './minisign/trusted.js';
// Images.
export { buildImage, type BuildImageOptions, type BuildSummary, type SlotSummary } from './build.js';
export { inspectDisk, type DiskInspection, type InspectedPartition, type SlotInfo, type EspInfo, type GrubCfgInfo, type SignatureInfo } from './inspect.js';
export { diffDisks, describeDifference, type DiskDifference, type DiffOptions } from './diff.js';
// Updates.
export { updateSlot, type UpdateOptions, type UpdateResult } from './update.js';
export { updateEsp, type EspUpdateOptions, type EspUpdateResult } from './esp-update.js';
export { findBootDisk, type BootDiskInfo } from './boot-disk.js';
// Boot counting.
export { readBootState, armTrial, markGood, rollback, setDefault, bootedLabel, type BootState } from './boot-state.js';
export { markBad, inferBooted, type BootStateChange, type BootedArg, type BootedSource } from './boot-state.js';
export { slotStatus, type BootStatus } from './status.js';
// The update repository.
export { publish, type PublishOptions, type PublishResult } from './repo/publish.js';
export { resolveRelease, type ResolveOptions, type Release } from './repo/client.js';
export type { ReleaseKind } from './repo/layout.js';
export { updateFromRepo, checkRepo, CHECK_EXIT, type RepoUpdateOptions, type RepoUpdateResult, type CheckOptions, type CheckResult, type CheckStatus } from './repo/node.js';
export { selfUpdate, type SelfUpdateOptions, type SelfUpdateResult } from './repo/self-update.js';
