#include "tracer/filter/member_compare.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>

namespace pwru {
namespace {

struct OpWord {
    std::string_view text;
    pwru_cmp_op op;
};
// Longest first: "<=" before "<", "==" before "=".
constexpr OpWord kOps[] = {{"==", PWRU_CMP_EQ}, {"!=", PWRU_CMP_NE}, {"<=", PWRU_CMP_LE}, {">=", PWRU_CMP_GE},
                           {"<", PWRU_CMP_LT},  {">", PWRU_CMP_GT},  {"=", PWRU_CMP_EQ}};

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

// A C integer literal: decimal, 0x hex, 0 octal, an optional '-'; a u/l suffix is allowed.
bool parse_number(std::string_view s, bool& negative, uint64_t& magnitude) {
    negative = !s.empty() && s.front() == '-';
    if (negative) s.remove_prefix(1);
    while (!s.empty() && (s.back() == 'u' || s.back() == 'U' || s.back() == 'l' || s.back() == 'L')) s.remove_suffix(1);
    if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front()))) return false;
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s.remove_prefix(2);
    } else if (s.size() > 1 && s[0] == '0') {
        base = 8;
        s.remove_prefix(1);
    }
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude, base);
    return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

Result<MemberCompare> compile_member_compare(const struct btf* b, std::string_view root, std::string_view root_struct,
                                             std::string_view expr, std::string_view flag) {
    const std::string where = fmt::format("{} '{}'", flag, std::string(expr));
    auto bad = [&](const std::string& why) { return bad_input(where + ": " + why); };

    // The operator: the first of = ! < > that is not the '>' of a "->".
    size_t at = std::string_view::npos;
    for (size_t i = 0; i < expr.size(); ++i) {
        if (expr[i] == '-' && i + 1 < expr.size() && expr[i + 1] == '>') {
            ++i;
            continue;
        }
        if (expr[i] == '=' || expr[i] == '!' || expr[i] == '<' || expr[i] == '>') {
            at = i;
            break;
        }
    }
    if (at == std::string_view::npos)
        return bad(
            fmt::format("no comparison: write MEMBER OP VALUE, e.g. {}->len > 1000 (OP: == != < <= > >=)", root));
    const OpWord* op = nullptr;
    for (const OpWord& w : kOps)
        if (expr.substr(at, w.text.size()) == w.text) {
            op = &w;
            break;
        }
    if (!op) return bad("'!' must be '!=': the operators are == != < <= > >=");
    std::string_view left = trim(expr.substr(0, at));
    std::string_view right = trim(expr.substr(at + op->text.size()));
    if (!right.empty() && (right.front() == '=' || right.front() == '<' || right.front() == '>'))
        return bad("one operator only: == != < <= > >=");
    if (right.empty()) return bad(fmt::format("a number or an enum name must follow '{}'", op->text));

    auto access = resolve_member_access(b, root, root_struct, left, flag);
    if (!access) {
        // Its message quotes the member alone: quote the whole expression.
        const std::string& inner = access.error().what;
        const size_t why = inner.find("': ");
        return bad(why == std::string::npos ? inner : inner.substr(why + 3));
    }
    MemberCompare mc;
    mc.member = std::move(*access);
    mc.cmp.field = mc.member.field;
    mc.cmp.op = static_cast<__u8>(op->op);

    const pwru_field& f = mc.member.field;
    const unsigned bits = f.bit_size ? f.bit_size : f.size * 8u;
    const std::string what = fmt::format("{} is a {}{}-bit {}", mc.member.expr, f.bit_size ? "bitfield of " : "", bits,
                                         f.is_signed ? "signed number" : "unsigned number");
    bool negative = false;
    uint64_t magnitude = 0;
    std::string_view value_text = right;
    if (parse_number(right, negative, magnitude)) {
        // fits below
    } else if (mc.member.kind == MemberAccess::Kind::Enum) {
        bool found = false;
        for (const auto& [name, v] : mc.member.enumerators)
            if (name == right) {
                negative = v < 0;
                magnitude = negative ? uint64_t(0) - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
                found = true;
            }
        if (!found)
            return bad(fmt::format("'{}' is not a number nor one of the enumerators of {} (e.g. {})",
                                   std::string(right), mc.member.expr,
                                   mc.member.enumerators.empty() ? "none" : mc.member.enumerators.front().first));
    } else if (mc.member.kind == MemberAccess::Kind::Bool && (right == "true" || right == "false")) {
        magnitude = right == "true" ? 1 : 0;
    } else {
        return bad(fmt::format("'{}' is not a number (decimal, 0x hex or 0 octal)", std::string(right)));
    }

    // Does the value fit the member?
    if (f.is_signed) {
        const uint64_t max_pos =
            bits >= 64 ? uint64_t(std::numeric_limits<int64_t>::max()) : (uint64_t(1) << (bits - 1)) - 1;
        const uint64_t max_neg = max_pos + 1;
        if ((negative && magnitude > max_neg) || (!negative && magnitude > max_pos))
            return bad(fmt::format("{} does not fit: {}", std::string(value_text), what));
        mc.cmp.value = negative ? uint64_t(0) - magnitude : magnitude;
    } else {
        const uint64_t max = bits >= 64 ? std::numeric_limits<uint64_t>::max() : (uint64_t(1) << bits) - 1;
        if ((negative && magnitude != 0) || magnitude > max)
            return bad(fmt::format("{} does not fit: {}", std::string(value_text), what));
        mc.cmp.value = magnitude;
    }
    return mc;
}

}  // namespace pwru
