// A C member access on a kernel object, `skb->dev->ifindex` or
// `skb->users.refs.counter`, resolved against the kernel's BTF into the reads a
// probe makes (struct pwru_field) and the type that says how to print the
// value. pwru's --output-skb-metadata and --filter-skb-expr (v1.0.10, v1.0.11)
// take these; so does --filter-xdp-expr with `xdp->...` on struct xdp_buff.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pwru_abi.h"
#include "tracer/util/result.h"

struct btf;

namespace pwru {

struct MemberAccess {
    std::string expr;  // as written, spaces removed: "skb->dev->ifindex"
    std::string leaf;  // the last member's name: what the output prints before '='
    pwru_field field{};

    // How the value prints (pwru's shape: its mybtf.DumpData).
    enum class Kind { Unsigned, Signed, Char, Bool, Enum, Pointer };
    Kind kind = Kind::Unsigned;
    std::vector<std::pair<std::string, int64_t>> enumerators;  // Kind::Enum
};

// Resolves `expr` (ROOT followed by ->member and .member steps) where ROOT
// is a pointer to struct `root_struct` (`skb` -> "sk_buff"). The last member
// must be an integer, enum, bool, char or pointer of at most 8 bytes (or a
// bitfield). A one-line BadInput error says what is wrong and what to write
// instead; `flag` names the option in it.
Result<MemberAccess> resolve_member_access(const struct btf* b, std::string_view root, std::string_view root_struct,
                                           std::string_view expr, std::string_view flag);

// The value as pwru prints it: integers in decimal, bools true/false, enums
// by name (else decimal), pointers and bitfields in hex ("0x0"), chars
// quoted when printable. `value` is what the probe stored: host order,
// sign-extended, bitfield bits at the bottom.
std::string format_member_value(const MemberAccess& m, uint64_t value);

}  // namespace pwru
