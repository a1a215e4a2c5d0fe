#include "tracer/output/gzip_file.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

namespace pwru {
namespace {

struct FileClose {
    void operator()(FILE* f) const { std::fclose(f); }
};

}  // namespace

Result<void> gzip_file(const std::string& src, const std::string& dst) {
    std::unique_ptr<FILE, FileClose> in(std::fopen(src.c_str(), "rb"));
    if (!in) return fail("cannot read " + src + " to compress it", errno);
    const std::string tmp = dst + ".tmp";
    gzFile out = gzopen(tmp.c_str(), "wb");
    if (!out) return fail("cannot create " + tmp + "; check the directory is writable", errno);

    std::vector<char> buf(1 << 16);
    bool ok = true;
    // Ends at the end of the file: every pass reads up to 64 KiB or stops.
    for (;;) {
        size_t n = std::fread(buf.data(), 1, buf.size(), in.get());
        if (n > 0 && gzwrite(out, buf.data(), static_cast<unsigned>(n)) != static_cast<int>(n)) {
            ok = false;
            break;
        }
        if (n < buf.size()) {
            ok = !std::ferror(in.get());
            break;
        }
    }
    if (gzclose(out) != Z_OK) ok = false;
    std::error_code ec;
    if (!ok) {
        std::filesystem::remove(tmp, ec);
        return fail("cannot compress " + src + " into " + dst + " (disk full?)");
    }
    std::filesystem::rename(tmp, dst, ec);
    if (ec) return fail("cannot rename " + tmp + " to " + dst + ": " + ec.message());
    return {};
}

}  // namespace pwru
