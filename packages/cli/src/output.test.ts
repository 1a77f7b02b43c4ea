import test from 'ava';
import { displayLines, displayText } from './output.js';

test('displayText: control, bidi and lone surrogates as \\xHH bytes; everything else as it is', (t) => {
  t.is(displayText('a\x1b[31mb\x07\n\r\t\x7f\x85'), 'a\\x1b[31mb\\x07\\x0a\\x0d\\x09\\x7f\\xc2\\x85');
  t.is(displayText('\u202eevil\u2066x\u2069\u200f'), '\\xe2\\x80\\xaeevil\\xe2\\x81\\xa6x\\xe2\\x81\\xa9\\xe2\\x80\\x8f');
  t.is(displayText('x\ud800y\udfff'), 'x\\xed\\xa0\\x80y\\xed\\xbf\\xbf');
  t.is(displayText('é 😀 \\ ok'), 'é 😀 \\ ok');
});

test('displayLines: as displayText, but newlines and tabs lay the text out', (t) => {
  t.is(displayLines('a\tb\nc\x1b[2Jd\u202e\n'), 'a\tb\nc\\x1b[2Jd\\xe2\\x80\\xae\n');
});
