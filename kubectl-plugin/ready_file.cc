#include "kubectl-plugin/ready_file.h"

#include <cerrno>
#include <cstdio>
#include <fstream>

namespace pwru::plugin {

ReadyFile::ReadyFile(std::string path, size_t streams) : path_(std::move(path)), settled_(streams, false) {}

void ReadyFile::settle(size_t stream) {
    if (stream >= settled_.size() || settled_[stream]) return;
    settled_[stream] = true;
    ++settled_count_;
}

void ReadyFile::on_attached(size_t stream, const std::string& node) {
    // A stream that failed before its start cannot attach later; one that
    // attached and fails afterwards stays counted as attached.
    if (stream < settled_.size() && settled_[stream]) return;
    settle(stream);
    attached_nodes_.insert(node);
}

void ReadyFile::on_failed(size_t stream) { settle(stream); }

bool ReadyFile::due() const {
    return !path_.empty() && !written_ && settled_count_ == settled_.size() && !attached_nodes_.empty();
}

std::string ReadyFile::content() const {
    std::string s;
    for (const auto& n : attached_nodes_) s += n + "\n";
    return s;
}

Result<void> ReadyFile::write() {
    written_ = true;  // once, even if it fails: the line below says so once
    const std::string tmp = path_ + ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        f << content();
        f.close();
        if (!f) return fail("cannot write the ready file " + tmp + "; check the directory exists and is writable");
    }
    if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
        const int e = errno;
        std::remove(tmp.c_str());
        return fail("cannot rename " + tmp + " to the ready file " + path_, e);
    }
    return {};
}

}  // namespace pwru::plugin
