#include "tracer/kernel/kallsyms.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "tracer/util/unique_fd.h"

namespace pwru {
namespace {

// Reads a whole file in big chunks: /proc/kallsyms reports size 0 and is
// ~10 MB, so neither stat() nor a line-by-line stream is of use.
Result<std::vector<char>> read_file(const std::string& path) {
    const std::string what = "cannot read kernel symbols '" + path + "'; is /proc mounted?";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail(what, errno);
    // /proc hands out a page or so per read: grow geometrically, not per read.
    std::vector<char> buf(size_t(1) << 20);
    size_t used = 0;
    for (;;) {
        if (buf.size() - used < (size_t(1) << 16)) buf.resize(buf.size() * 2);
        ssize_t n = ::read(fd.get(), buf.data() + used, buf.size() - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(what, errno);
        if (n == 0) break;
        used += size_t(n);
    }
    buf.resize(used);
    buf.shrink_to_fit();  // kept for the program's life as the name arena
    return buf;
}

bool is_text(char type) { return type == 't' || type == 'T' || type == 'w' || type == 'W'; }

// Parses one line, "ffffffff81000000 T _text" or "... t name\t[module]",
// into sym; false for malformed lines and for symbols that are not text.
bool parse_line(std::string_view line, Kallsyms::Symbol& sym) {
    const char* p = line.data();
    const char* end = p + line.size();
    auto [after_addr, ec] = std::from_chars(p, end, sym.addr, 16);
    if (ec != std::errc() || end - after_addr < 4 || after_addr[0] != ' ' || !is_text(after_addr[1]) ||
        after_addr[2] != ' ')
        return false;
    // By hand: string_view::find_first_of calls memchr once per character.
    const char* name = after_addr + 3;
    const char* name_end = name;
    while (name_end < end && *name_end != '\t' && *name_end != ' ') ++name_end;
    sym.name = std::string_view(name, name_end - name);
    sym.module = {};
    std::string_view rest(name_end, end - name_end);
    size_t open = rest.find('[');
    size_t close = rest.find(']', open);
    if (open != std::string_view::npos && close != std::string_view::npos)
        sym.module = rest.substr(open + 1, close - open - 1);
    return !sym.name.empty();
}

std::string hex(uint64_t v) {
    char buf[16];
    auto res = std::to_chars(buf, buf + sizeof buf, v, 16);
    return std::string(buf, res.ptr);
}

}  // namespace

Result<Kallsyms> Kallsyms::load(const std::string& path) {
    auto text = read_file(path);
    if (!text) return std::unexpected(text.error());
    Kallsyms ks;
    ks.text_ = std::move(*text);
    std::string_view all(ks.text_.data(), ks.text_.size());

    ks.symbols_.reserve(all.size() / 44);  // ~44 bytes a line, most of them text
    Symbol sym{};
    while (!all.empty()) {
        size_t nl = all.find('\n');
        std::string_view line = all.substr(0, nl);
        all.remove_prefix(nl == std::string_view::npos ? all.size() : nl + 1);
        if (!parse_line(line, sym)) continue;
        ks.visible_ |= sym.addr != 0;
        ks.symbols_.push_back(sym);
    }
    // Stable: of several symbols at one address the first listed stays first.
    // vmlinux is listed in address order, so this is mostly a check.
    auto by_addr = [](const Symbol& a, const Symbol& b) { return a.addr < b.addr; };
    if (!std::is_sorted(ks.symbols_.begin(), ks.symbols_.end(), by_addr))
        std::stable_sort(ks.symbols_.begin(), ks.symbols_.end(), by_addr);
    ks.by_name_.reserve(ks.symbols_.size());
    for (uint32_t i = 0; i < ks.symbols_.size(); ++i) ks.by_name_.try_emplace(ks.symbols_[i].name, i);
    return ks;
}

const Kallsyms::Symbol* Kallsyms::find(uint64_t addr) const {
    if (!visible_) return nullptr;
    auto by_addr = [](uint64_t a, const Symbol& s) { return a < s.addr; };
    auto it = std::upper_bound(symbols_.begin(), symbols_.end(), addr, by_addr);
    if (it == symbols_.begin()) return nullptr;
    // Back to the first symbol at that address.
    uint64_t start = std::prev(it)->addr;
    // No kernel function is that large: the address lies past the last text
    // symbol (a BPF program's JIT image, loaded after we read kallsyms).
    constexpr uint64_t kMaxFunctionSize = 1 << 20;
    if (addr - start > kMaxFunctionSize) return nullptr;
    return &*std::lower_bound(symbols_.begin(), it, start, [](const Symbol& s, uint64_t a) { return s.addr < a; });
}

std::string Kallsyms::symbolize(uint64_t addr) const {
    const Symbol* s = find(addr);
    if (!s) return "0x" + hex(addr);
    std::string out(s->name);
    out += "+0x" + hex(addr - s->addr);
    if (!s->module.empty()) (out += " [").append(s->module) += "]";
    return out;
}

std::optional<uint64_t> Kallsyms::address_of(const std::string& name) const {
    auto it = by_name_.find(name);
    if (!visible_ || it == by_name_.end()) return std::nullopt;
    return symbols_[it->second].addr;
}

}  // namespace pwru
