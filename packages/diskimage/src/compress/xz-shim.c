/*
 * The C side of xz.ts: liblzma's .xz stream decoder behind seven exports that
 * take and return only i32 (pointers and lengths in wasm memory), so the wasm
 * needs no JS glue. Built by scripts/build-xz-wasm.sh; malloc and free are
 * exported too so JS can place input and output buffers in wasm memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <lzma.h>

/* A decoder for .xz streams: concatenated streams and stream padding are
 * accepted (as `xz -d` does), an unknown check type is an error (we never
 * return bytes we could not verify), and memory is capped at memlimit bytes
 * (LZMA_MEMLIMIT_ERROR beyond it, e.g. for a huge dictionary). */
__attribute__((export_name("xzd_new")))
lzma_stream *xzd_new(uint32_t memlimit) {
	lzma_stream *s = malloc(sizeof *s);
	if (s == NULL)
		return NULL;
	*s = (lzma_stream)LZMA_STREAM_INIT;
	if (lzma_stream_decoder(s, memlimit,
			LZMA_CONCATENATED | LZMA_TELL_UNSUPPORTED_CHECK) != LZMA_OK) {
		free(s);
		return NULL;
	}
	return s;
}

/* One lzma_code call from in[0..in_len) into out[0..out_len); finish != 0
 * says the input ends here (LZMA_FINISH, so a truncated stream is an error
 * instead of a request for more). Returns the lzma_ret; what was consumed
 * and produced is read back with xzd_avail_in/xzd_avail_out. */
__attribute__((export_name("xzd_code")))
int xzd_code(lzma_stream *s, const uint8_t *in, uint32_t in_len,
		uint8_t *out, uint32_t out_len, int finish) {
	s->next_in = in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = out_len;
	return lzma_code(s, finish ? LZMA_FINISH : LZMA_RUN);
}

__attribute__((export_name("xzd_avail_in")))
uint32_t xzd_avail_in(const lzma_stream *s) { return (uint32_t)s->avail_in; }

__attribute__((export_name("xzd_avail_out")))
uint32_t xzd_avail_out(const lzma_stream *s) { return (uint32_t)s->avail_out; }

/* Frees the decoder's memory (dictionary included) and the handle. */
__attribute__((export_name("xzd_end")))
void xzd_end(lzma_stream *s) {
	lzma_end(s);
	free(s);
}

/* JS-side buffers. */
__attribute__((export_name("xzd_malloc")))
void *xzd_malloc(uint32_t n) { return malloc(n); }

__attribute__((export_name("xzd_free")))
void xzd_free(void *p) { free(p); }

/* Emscripten's standalone sbrk reports memory growth through this import;
 * defining it here leaves the wasm with no imports at all (xz.ts re-reads
 * memory.buffer after every call anyway). */
void emscripten_notify_memory_growth(size_t memory_index);
void emscripten_notify_memory_growth(size_t memory_index) { (void)memory_index; }
