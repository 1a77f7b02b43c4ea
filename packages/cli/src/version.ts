/** The CLI's version (`diskimg --version`); kept equal to packages/cli/package.json by a test. */
export const VERSION = '0.1.0';

/** Set by scripts/bundle.mjs (esbuild define) in dist/diskimg.mjs; absent when run from source. */
declare const __DISKIMG_COMMIT__: string | undefined;

/** The git commit the bundle was built from; undefined when running from source or dist/. */
export const COMMIT: string | undefined = typeof __DISKIMG_COMMIT__ === 'string' ? __DISKIMG_COMMIT__ : undefined;

/** What `--version` prints: "0.1.0", or in the bundle "0.1.0 (git 1a2b3c…)". */
export const VERSION_LINE = COMMIT ? `${VERSION} (git ${COMMIT})` : VERSION;
