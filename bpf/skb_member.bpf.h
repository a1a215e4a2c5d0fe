/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --output-skb-metadata and --filter-skb-expr (and their xdp_buff twins): a
 * member of the skb reached
 * through pointers (struct pwru_field, resolved from BTF by user space), read
 * with bpf_probe_read_kernel and made a plain number. pwru splices generated
 * instructions for each expression; here the few reads are described in CFG,
 * which is frozen: every loop below unrolls and the verifier sees constant
 * offsets and sizes, so an unused field costs nothing.
 */
#ifndef PWRU_SKB_MEMBER_BPF_H
#define PWRU_SKB_MEMBER_BPF_H

#include "pwru_maps.bpf.h"
#include <bpf/bpf_endian.h>

/* The value of f in the object at base; false when a pointer on the way is
 * NULL or a read fails. */
static __always_inline bool read_member(const void *base, const volatile struct pwru_field *f,
					__u64 *out)
{
	__u64 addr = (__u64)base;
	__u64 at = 0;
	__u64 v = 0;
	__u32 bits;

#pragma unroll
	for (int i = 0; i < PWRU_FIELD_LEVELS; i++) {
		if (i + 1 == f->levels) {
			at = addr + f->off[i];
			break;
		}
		if (bpf_probe_read_kernel(&addr, sizeof(addr), (void *)(addr + f->off[i])) || !addr)
			return false;
	}
	if (!at)
		return false;

	switch (f->size) {
	case 1: {
		__u8 x;

		if (bpf_probe_read_kernel(&x, sizeof(x), (void *)at))
			return false;
		v = x;
		break;
	}
	case 2: {
		__u16 x;

		if (bpf_probe_read_kernel(&x, sizeof(x), (void *)at))
			return false;
		v = f->big_endian ? bpf_ntohs(x) : x;
		break;
	}
	case 4: {
		__u32 x;

		if (bpf_probe_read_kernel(&x, sizeof(x), (void *)at))
			return false;
		v = f->big_endian ? bpf_ntohl(x) : x;
		break;
	}
	default: {
		__u64 x;

		if (bpf_probe_read_kernel(&x, sizeof(x), (void *)at))
			return false;
		v = f->big_endian ? bpf_be64_to_cpu(x) : x;
		break;
	}
	}

	bits = f->bit_size ? f->bit_size : f->size * 8;
	if (f->bit_size) {
		v >>= f->bit_shift;
		if (bits < 64)
			v &= (1ULL << bits) - 1;
	}
	if (f->is_signed && bits < 64)
		v = (__u64)((__s64)(v << (64 - bits)) >> (64 - bits));
	*out = v;
	return true;
}

/* --filter-skb-expr: does the skb's field compare as the expression says? */
static __always_inline bool member_matches(const void *base,
					   const volatile struct pwru_field_cmp *c)
{
	__u64 v;

	if (!read_member(base, &c->field, &v))
		return false;
	if (c->field.is_signed) {
		__s64 a = (__s64)v, b = (__s64)c->value;

		switch (c->op) {
		case PWRU_CMP_EQ: return a == b;
		case PWRU_CMP_NE: return a != b;
		case PWRU_CMP_LT: return a < b;
		case PWRU_CMP_LE: return a <= b;
		case PWRU_CMP_GT: return a > b;
		default: return a >= b;
		}
	}
	switch (c->op) {
	case PWRU_CMP_EQ: return v == c->value;
	case PWRU_CMP_NE: return v != c->value;
	case PWRU_CMP_LT: return v < c->value;
	case PWRU_CMP_LE: return v <= c->value;
	case PWRU_CMP_GT: return v > c->value;
	default: return v >= c->value;
	}
}

/* --output-skb-metadata / --output-xdp-metadata: the n asked fields of the
 * object at base into the record. */
static __always_inline void read_members(const void *base, const volatile struct pwru_field *fields,
					 __u32 n, struct pwru_field_values *out)
{
	/* A bounded loop, not unrolled: clang gives up on unrolling it around
	 * the unrolled reads, and the verifier walks it (at most 4 turns). */
	for (int i = 0; i < PWRU_MAX_FIELDS; i++) {
		if (i >= n)
			break;
		out->readable[i] = read_member(base, &fields[i], &out->value[i]);
	}
}

/* Whether records carry struct pwru_field_values. */
static __always_inline bool records_have_fields(void)
{
	return CFG.n_skb_fields || CFG.n_xdp_fields;
}

#endif /* PWRU_SKB_MEMBER_BPF_H */
