// gzip one file into another (--output-file-compress), with zlib.
#pragma once

#include <string>

#include "tracer/util/result.h"

namespace pwru {

// Writes the gzip form of `src` to `dst` (through dst + ".tmp", renamed when
// complete, so a crash never leaves a half-written dst). `src` is kept.
Result<void> gzip_file(const std::string& src, const std::string& dst);

}  // namespace pwru
