// Results the tracer library returns: a value, or an Error that says what
// failed (errno, what, context such as a function name or a verifier log).
// The binaries turn an Error into one line that tells the user what to do.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace pwru {

// Whose fault, which decides the exit code and the HTTP status.
enum class ErrorKind {
    Failure,   // something failed at run time: exit 1, HTTP 500/503
    BadInput,  // what the user typed is wrong (a filter, a flag value): exit 2, HTTP 400
    NotFound,  // what the user named does not exist (a pod, a context): exit 2, HTTP 404
};

struct Error {
    int err = 0;          // errno-style code, 0 when not from a syscall
    std::string what;     // one line: what failed and what to do next
    std::string context;  // optional detail (verifier log, file name, ...)
    ErrorKind kind = ErrorKind::Failure;

    // The user's input is at fault (BadInput or NotFound): the binaries exit 2.
    bool users_fault() const { return kind != ErrorKind::Failure; }

    // "what" plus ": strerror(err)" when err is set.
    std::string message() const;
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(std::string what, int err = 0, std::string context = {}) {
    return std::unexpected(Error{err, std::move(what), std::move(context)});
}

// The same, for errors in what the user typed (a filter, a flag value).
inline std::unexpected<Error> bad_input(std::string what, std::string context = {}) {
    return std::unexpected(Error{0, std::move(what), std::move(context), ErrorKind::BadInput});
}

// The same, for something the user named that does not exist (a pod, a node).
inline std::unexpected<Error> not_found(std::string what, std::string context = {}) {
    return std::unexpected(Error{0, std::move(what), std::move(context), ErrorKind::NotFound});
}

}  // namespace pwru
