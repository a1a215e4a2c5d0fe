// Kernel text symbols from /proc/kallsyms: address -> "function+offset" for
// stacks and drop locations, and name -> address for attaching by address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tracer/util/result.h"

namespace pwru {

class Kallsyms {
  public:
    // name and module view the file text the Kallsyms keeps: valid while it lives.
    struct Symbol {
        uint64_t addr;
        std::string_view name;
        std::string_view module;  // "" for vmlinux
    };

    Kallsyms() = default;
    // Move-only: the symbols view text_, whose buffer a move hands over intact.
    Kallsyms(Kallsyms&&) = default;
    Kallsyms& operator=(Kallsyms&&) = default;
    Kallsyms(const Kallsyms&) = delete;
    Kallsyms& operator=(const Kallsyms&) = delete;

    // Text symbols only (types t, T, w, W), sorted by address.
    static Result<Kallsyms> load(const std::string& path = "/proc/kallsyms");

    // The symbol containing addr: the one with the largest address <= addr
    // (among several at one address, the first listed). nullptr below the first.
    const Symbol* find(uint64_t addr) const;
    // "name+0x1f", or "name+0x1f [module]"; "0x<hex>" when unknown.
    std::string symbolize(uint64_t addr) const;
    // The lowest-address text symbol with that name (so vmlinux before modules).
    std::optional<uint64_t> address_of(const std::string& name) const;
    size_t size() const { return symbols_.size(); }
    // False when kptr_restrict (or not being root) shows every address as 0.
    bool addresses_visible() const { return visible_; }

  private:
    // The file as read: one arena for all names, no string per symbol (a vector,
    // not a std::string, so that even a tiny file is not moved by a move).
    std::vector<char> text_;
    std::vector<Symbol> symbols_;
    std::unordered_map<std::string_view, uint32_t> by_name_;  // -> index in symbols_
    bool visible_ = false;
};

}  // namespace pwru
