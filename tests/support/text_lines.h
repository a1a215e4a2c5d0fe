// Picking lines out of a program's captured output.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace pwru::test {

// The lines of `text` that contain `needle`, in order.
inline std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.find(needle) != std::string::npos) out.push_back(line);
    return out;
}

}  // namespace pwru::test
