// Small file helpers shared by the tests: a temporary directory and writing
// a generated BTF object to a file.
#pragma once

#include <bpf/btf.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

namespace pwru::test {

// A fresh directory, removed at the end of the test.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& prefix = "pwru-test") {
        std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        REQUIRE(::mkdtemp(tmpl.data()));
        path = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

// A --ready-file path no earlier run used, in one folder per test binary that
// is removed when the binary exits: the runs leave nothing in /tmp.
inline std::string fresh_ready_file(const std::string& tag) {
    static TempDir dir("pwru-ready");
    static int n = 0;
    return (dir.path / (tag + "-" + std::to_string(n++))).string();
}

inline void write_btf(const struct btf* b, const std::filesystem::path& file) {
    uint32_t size = 0;
    const void* data = btf__raw_data(b, &size);
    REQUIRE(data);
    std::ofstream(file, std::ios::binary).write(static_cast<const char*>(data), size);
}

}  // namespace pwru::test
