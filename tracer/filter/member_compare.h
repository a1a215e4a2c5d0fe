// pwru's --filter-skb-expr / --filter-xdp-expr: `MEMBER OP VALUE`, e.g.
// `skb->dev->ifindex == 11` or `skb->len > 1000`, one comparison of a member
// (btf_member_access.h) with a number or an enumerator's name. OP is one of
// == = != < <= > >= (pwru takes '=' for '=='). Compared as numbers in host
// order (a __be16 like skb->protocol against 0x0800), signed when the
// member's type is.
#pragma once

#include <string>
#include <string_view>

#include "pwru_abi.h"
#include "tracer/kernel/btf_member_access.h"
#include "tracer/util/result.h"

struct btf;

namespace pwru {

struct MemberCompare {
    MemberAccess member;
    pwru_field_cmp cmp{};  // what the probes evaluate (CFG.skb_expr)
};

// A value that does not fit the member (a negative one for an unsigned
// member, 70000 for a 2-byte one) is refused: the expression could never
// be true as the user means it.
Result<MemberCompare> compile_member_compare(const struct btf* b, std::string_view root, std::string_view root_struct,
                                             std::string_view expr, std::string_view flag);

}  // namespace pwru
