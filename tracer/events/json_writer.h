// A JSON object written straight into a string, byte for byte as
// nlohmann::json's dump() writes the same object (no indent, keys in the
// order the caller gives, which must be nlohmann's sorted order): the event
// formatters' hot path, where building a nlohmann::json per event cost more
// than everything else together.
#pragma once

#include <fmt/compile.h>
#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>

namespace pwru {

// s as a JSON string, quoted and escaped as nlohmann's dump() does.
void append_json_string(std::string& out, std::string_view s);

class JsonWriter {
  public:
    explicit JsonWriter(std::string& out) : out_(out) { out_ += '{'; }

    JsonWriter& key(std::string_view k) {
        out_ += first_ ? "\"" : ",\"";
        first_ = false;
        out_ += k;  // our own keys: nothing to escape
        out_ += "\":";
        return *this;
    }
    JsonWriter& string(std::string_view s) {
        append_json_string(out_, s);
        return *this;
    }
    template <typename T>
    JsonWriter& number(T v) {
        static_assert(std::is_integral_v<T>);
        // Widened: fmt would print a char-typed value as a character.
        if constexpr (std::is_signed_v<T>)
            fmt::format_to(std::back_inserter(out_), FMT_COMPILE("{}"), static_cast<int64_t>(v));
        else
            fmt::format_to(std::back_inserter(out_), FMT_COMPILE("{}"), static_cast<uint64_t>(v));
        return *this;
    }
    void end() { out_ += '}'; }
    std::string& buffer() { return out_; }

  private:
    std::string& out_;
    bool first_ = true;
};

}  // namespace pwru
