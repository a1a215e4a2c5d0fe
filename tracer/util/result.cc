#include "tracer/util/result.h"

#include <cstring>

namespace pwru {

std::string Error::message() const {
    if (err == 0) return what;
    return what + ": " + std::strerror(err < 0 ? -err : err);
}

}  // namespace pwru
