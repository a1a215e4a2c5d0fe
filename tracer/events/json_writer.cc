#include "tracer/events/json_writer.h"

#include <nlohmann/json.hpp>

namespace pwru {

void append_json_string(std::string& out, std::string_view s) {
    // Bytes >= 0x80 go through nlohmann itself: it checks the UTF-8 (and
    // throws on a bad sequence), which must stay exactly as before.
    for (unsigned char c : s) {
        if (c >= 0x80) {
            out += nlohmann::json(std::string(s)).dump();
            return;
        }
    }
    out += '"';
    size_t plain = 0;  // start of the run of bytes copied as they are
    for (size_t i = 0; i < s.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + plain, i - plain);
        plain = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: fmt::format_to(std::back_inserter(out), FMT_COMPILE("\\u{:04x}"), c); break;
        }
    }
    out.append(s.data() + plain, s.size() - plain);
    out += '"';
}

}  // namespace pwru
