// The HTTP options' help and parsing agree with the library's defaults and units.
import test from 'ava';
import { DEFAULT_HTTP_LIMITS } from '@diskimg/diskimage/internal';
import { UsageError } from '@diskimg/partitions/internal';
import { httpLimitsFrom, HTTP_OPTION_DEFAULTS } from './http-options.js';

test('the defaults --help states are the library\'s, and the options parse into its units', (t) => {
  t.deepEqual(
    httpLimitsFrom({ 'http-timeout': String(HTTP_OPTION_DEFAULTS.timeout), 'min-rate': HTTP_OPTION_DEFAULTS.minRate, 'stall-window': String(HTTP_OPTION_DEFAULTS.window) }),
    { ...DEFAULT_HTTP_LIMITS },
  );
  t.deepEqual(httpLimitsFrom({ 'http-timeout': '0', 'min-rate': '0', 'stall-window': '0.5' }), { deadlineMs: 0, minRate: 0, stallWindowMs: 500 });
  t.deepEqual(httpLimitsFrom({}), {});
  for (const bad of [{ 'http-timeout': '-1' }, { 'http-timeout': '1e3' }, { 'stall-window': '0' }, { 'stall-window': '700000' }, { 'min-rate': 'rest' }, { 'min-rate': '1Q' }]) {
    t.throws(() => httpLimitsFrom(bad), { instanceOf: UsageError }, JSON.stringify(bad));
  }
});
