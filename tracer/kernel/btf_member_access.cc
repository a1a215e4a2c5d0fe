#include "tracer/kernel/btf_member_access.h"

#include <bpf/btf.h>
#include <fmt/format.h>

#include <cctype>
#include <cstring>

namespace pwru {
namespace {

std::string_view name_of(const struct btf* b, uint32_t name_off) {
    const char* n = btf__name_by_offset(b, name_off);
    return n ? n : "";
}

// Follows typedefs and modifiers to the type itself; `big_endian` is set when
// one of the typedefs is a __be16 / __be32 / __be64 (the kernel's names for
// network byte order). Bounded against a corrupt file's cycles.
uint32_t resolve_type(const struct btf* b, uint32_t id, bool* big_endian) {
    for (int hops = 0; hops < 32 && id != 0; ++hops) {
        const struct btf_type* t = btf__type_by_id(b, id);
        if (!t || !(btf_is_mod(t) || btf_is_typedef(t))) return id;
        if (btf_is_typedef(t) && big_endian && name_of(b, t->name_off).starts_with("__be")) *big_endian = true;
        id = t->type;
    }
    return id;
}

struct FoundMember {
    uint32_t bit_offset = 0;
    uint32_t type_id = 0;
    uint32_t bitfield_size = 0;
};

// `name` among the members of struct/union t, also inside its anonymous
// members (sk_buff's dev sits in an unnamed union in an unnamed struct).
bool find_member(const struct btf* b, const struct btf_type* t, std::string_view name, FoundMember& out,
                 int depth = 0) {
    if (depth > 8) return false;
    const struct btf_member* m = btf_members(t);
    for (uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
        std::string_view mname = name_of(b, m->name_off);
        if (mname == name) {
            out = {btf_member_bit_offset(t, i), m->type, btf_member_bitfield_size(t, i)};
            return true;
        }
        if (!mname.empty()) continue;
        const struct btf_type* inner = btf__type_by_id(b, resolve_type(b, m->type, nullptr));
        FoundMember sub;
        if (inner && (btf_is_struct(inner) || btf_is_union(inner)) && find_member(b, inner, name, sub, depth + 1)) {
            out = {btf_member_bit_offset(t, i) + sub.bit_offset, sub.type_id, sub.bitfield_size};
            return true;
        }
    }
    return false;
}

std::string kind_word(const struct btf_type* t) {
    if (btf_is_struct(t)) return "a struct";
    if (btf_is_union(t)) return "a union";
    if (btf_is_array(t)) return "an array";
    if (btf_is_ptr(t)) return "a pointer";
    if (btf_is_int(t)) return "an integer";
    if (btf_is_any_enum(t)) return "an enum";
    if (btf_is_func_proto(t)) return "a function";
    return "not a struct";
}

bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

Result<MemberAccess> resolve_member_access(const struct btf* b, std::string_view root, std::string_view root_struct,
                                           std::string_view expr, std::string_view flag) {
    MemberAccess m;
    for (char c : expr)
        if (!std::isspace(static_cast<unsigned char>(c))) m.expr += c;
    const std::string where = fmt::format("{} '{}'", flag, std::string(expr));
    auto bad = [&](const std::string& why) { return bad_input(where + ": " + why); };

    const std::string& s = m.expr;
    if (!s.starts_with(root) || (s.size() > root.size() && is_ident_char(s[root.size()])))
        return bad(fmt::format("must start with {}, e.g. {}->len", root, root));
    int32_t root_id = btf__find_by_name_kind(b, std::string(root_struct).c_str(), BTF_KIND_STRUCT);
    if (root_id <= 0) return bad(fmt::format("the kernel's BTF has no struct {}", root_struct));

    // The type we are in: a pointer to root_struct, then each member's type.
    const struct btf_type* cur = nullptr;  // null: still the root pointer
    uint32_t cur_id = static_cast<uint32_t>(root_id);
    std::string cur_name = std::string(root);
    std::vector<uint32_t> levels;  // byte offset within each object read
    FoundMember last;
    bool big_endian = false;
    size_t pos = root.size();
    if (pos == s.size()) return bad(fmt::format("name a member, e.g. {}->len", root));
    while (pos < s.size()) {
        bool arrow;
        if (s.compare(pos, 2, "->") == 0) {
            arrow = true;
            pos += 2;
        } else if (s[pos] == '.') {
            arrow = false;
            pos += 1;
        } else {
            return bad(
                fmt::format("unexpected '{}' after {}: only ->member and .member are understood", s[pos], cur_name));
        }
        size_t end = pos;
        while (end < s.size() && is_ident_char(s[end])) ++end;
        std::string member = s.substr(pos, end - pos);
        if (member.empty() || std::isdigit(static_cast<unsigned char>(member[0])))
            return bad(fmt::format("a member name must follow {}{}", cur_name, arrow ? "->" : "."));
        pos = end;

        // The struct to look in: the pointer's target for ->, the member itself for '.'.
        const struct btf_type* container;
        if (arrow) {
            if (cur) {
                if (!btf_is_ptr(cur))
                    return bad(
                        fmt::format("{} is {}, not a pointer: use '.' to reach its members", cur_name, kind_word(cur)));
                cur_id = resolve_type(b, cur->type, nullptr);
            }
            container = btf__type_by_id(b, cur_id);
            if (levels.size() == PWRU_FIELD_LEVELS)
                return bad(fmt::format("follows more than {} pointers", PWRU_FIELD_LEVELS - 1));
            levels.push_back(0);
        } else {
            if (!cur) return bad(fmt::format("{} is a pointer: write {}->{}", root, root, member));
            if (btf_is_ptr(cur)) return bad(fmt::format("{} is a pointer: write {}->{}", cur_name, cur_name, member));
            container = cur;
        }
        if (!container || !(btf_is_struct(container) || btf_is_union(container)))
            return bad(fmt::format("{} does not point to a struct or union", cur_name));
        if (last.bitfield_size) return bad(fmt::format("{} is a bitfield", cur_name));
        FoundMember found;
        if (!find_member(b, container, member, found)) {
            std::string_view cname = name_of(b, container->name_off);
            return bad(fmt::format(
                "{} {} has no member '{}' in this kernel (see bpftool btf dump file "
                "/sys/kernel/btf/vmlinux format c)",
                btf_is_union(container) ? "union" : "struct", cname.empty() ? "(anonymous)" : cname, member));
        }
        if (found.bitfield_size == 0 && found.bit_offset % 8 != 0)
            return bad(fmt::format("member '{}' is not byte aligned", member));
        levels.back() += found.bit_offset / 8;
        if (levels.back() > 0xffff) return bad(fmt::format("member '{}' lies beyond 64 KiB into its object", member));
        big_endian = false;
        uint32_t id = resolve_type(b, found.type_id, &big_endian);
        cur = btf__type_by_id(b, id);
        if (!cur) return bad(fmt::format("member '{}' has a type this BTF does not describe", member));
        cur_id = id;
        cur_name = s.substr(0, pos);
        m.leaf = member;
        last = found;
    }

    // The last member: a number of at most 8 bytes.
    pwru_field& f = m.field;
    if (last.bitfield_size) {
        uint32_t shift = last.bit_offset % 8;
        uint32_t need = shift + last.bitfield_size;
        if (need > 64) return bad(fmt::format("{} is a bitfield wider than 8 bytes", m.expr));
        f.size = need <= 8 ? 1 : need <= 16 ? 2 : need <= 32 ? 4 : 8;
        f.bit_shift = static_cast<uint8_t>(shift);
        f.bit_size = static_cast<uint8_t>(last.bitfield_size);
    } else if (btf_is_ptr(cur)) {
        f.size = 8;
    } else if (btf_is_int(cur) || btf_is_any_enum(cur)) {
        if (cur->size != 1 && cur->size != 2 && cur->size != 4 && cur->size != 8)
            return bad(fmt::format("{} is a {}-byte number; up to 8 bytes can be read", m.expr, cur->size));
        f.size = static_cast<uint8_t>(cur->size);
    } else {
        std::string hint = btf_is_struct(cur) || btf_is_union(cur)
                               ? fmt::format("name one of its members, e.g. {}.MEMBER", m.expr)
                               : "name a number, an enum, a bool or a pointer";
        return bad(fmt::format("{} is {}: {}", m.expr, kind_word(cur), hint));
    }
    if (btf_is_int(cur)) {
        uint8_t enc = btf_int_encoding(cur);
        m.kind = enc & BTF_INT_BOOL     ? MemberAccess::Kind::Bool
                 : enc & BTF_INT_CHAR   ? MemberAccess::Kind::Char
                 : enc & BTF_INT_SIGNED ? MemberAccess::Kind::Signed
                                        : MemberAccess::Kind::Unsigned;
    } else if (btf_is_any_enum(cur)) {
        m.kind = MemberAccess::Kind::Enum;
        const bool is_signed = btf_kflag(cur);
        if (btf_is_enum(cur)) {
            const struct btf_enum* e = btf_enum(cur);
            for (uint16_t i = 0; i < btf_vlen(cur); ++i)
                m.enumerators.emplace_back(std::string(name_of(b, e[i].name_off)),
                                           is_signed ? int64_t(int32_t(e[i].val)) : int64_t(uint32_t(e[i].val)));
        } else {
            const struct btf_enum64* e = btf_enum64(cur);
            for (uint16_t i = 0; i < btf_vlen(cur); ++i)
                m.enumerators.emplace_back(std::string(name_of(b, e[i].name_off)),
                                           static_cast<int64_t>(btf_enum64_value(&e[i])));
        }
        f.is_signed = is_signed ? 1 : 0;
    } else if (btf_is_ptr(cur)) {
        m.kind = MemberAccess::Kind::Pointer;
    }
    if (m.kind == MemberAccess::Kind::Signed ||
        (m.kind == MemberAccess::Kind::Char && btf_is_int(cur) && (btf_int_encoding(cur) & BTF_INT_SIGNED)))
        f.is_signed = 1;
    f.big_endian = big_endian && !last.bitfield_size && f.size > 1 ? 1 : 0;
    f.levels = static_cast<uint8_t>(levels.size());
    for (size_t i = 0; i < levels.size(); ++i) f.off[i] = static_cast<uint16_t>(levels[i]);
    return m;
}

std::string format_member_value(const MemberAccess& m, uint64_t value) {
    if (m.field.bit_size) return fmt::format("{:#x}", value);
    switch (m.kind) {
        case MemberAccess::Kind::Signed: return std::to_string(static_cast<int64_t>(value));
        case MemberAccess::Kind::Bool: return value ? "true" : "false";
        case MemberAccess::Kind::Char: {
            unsigned char c = static_cast<unsigned char>(value);
            if (std::isprint(c))
                return c == '\'' || c == '\\' ? fmt::format("'\\{}'", char(c)) : fmt::format("'{}'", char(c));
            return fmt::format("{:#x}", c);
        }
        case MemberAccess::Kind::Enum:
            for (const auto& [name, v] : m.enumerators)
                if (static_cast<uint64_t>(v) == value) return name;
            return m.field.is_signed ? std::to_string(static_cast<int64_t>(value)) : std::to_string(value);
        case MemberAccess::Kind::Pointer: return fmt::format("{:#x}", value);
        case MemberAccess::Kind::Unsigned: break;
    }
    return std::to_string(value);
}

}  // namespace pwru
