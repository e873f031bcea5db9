// Result<T>: the error-or-value type of hako's setup, configuration and API paths (C++20 has no
// std::expected). A guest-triggered fault never travels as a Result; see docs/architecture.md.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace hako {

/// What kind of failure an Error is; modules add context in the message.
enum class ErrorKind {
    InvalidArgument, // bad configuration or option value
    NotFound,        // a file or resource does not exist
    Permission,      // access denied
    Io,              // a read/write/syscall failed
    Format,          // a file is not what it claims (kernel, ROM, image)
    OutOfRange,      // an address, size or index is outside what is allowed
    Unsupported,     // the host or the input needs something hako does not do
    Busy,            // a resource is already in use
    Kvm,             // a KVM ioctl failed
};

class [[nodiscard]] Error {
public:
    Error(ErrorKind kind, std::string message) : m_kind(kind), m_message(std::move(message)) {}

    /// An Error for a failed system call: "<what>: <strerror(errno)>".
    static Error from_errno(ErrorKind kind, std::string_view what, int err = errno)
    {
        return Error(kind, fmt::format("{}: {}", what, std::strerror(err)), err);
    }

    ErrorKind kind() const { return m_kind; }
    std::string const& message() const { return m_message; }
    int sys_errno() const { return m_errno; }

    /// Prefixes context: "ctx: message".
    Error with_context(std::string_view ctx) const&
    {
        return Error(m_kind, fmt::format("{}: {}", ctx, m_message), m_errno);
    }

private:
    Error(ErrorKind kind, std::string message, int err) : m_kind(kind), m_message(std::move(message)), m_errno(err) {}

    ErrorKind m_kind;
    std::string m_message;
    int m_errno { 0 };
};

template<typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_storage(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : m_storage(std::in_place_index<1>, std::move(error)) {}

    bool has_value() const { return m_storage.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & { return std::get<0>(m_storage); }
    T const& value() const& { return std::get<0>(m_storage); }
    T&& value() && { return std::get<0>(std::move(m_storage)); }
    T& operator*() & { return value(); }
    T const& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    T const* operator->() const { return &value(); }

    Error const& error() const& { return std::get<1>(m_storage); }
    Error&& error() && { return std::get<1>(std::move(m_storage)); }

private:
    std::variant<T, Error> m_storage;
};

template<>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : m_error(std::move(error)), m_failed(true) {}

    bool has_value() const { return !m_failed; }
    explicit operator bool() const { return has_value(); }
    void value() const {}
    Error const& error() const& { return m_error; }
    Error&& error() && { return std::move(m_error); }

private:
    Error m_error { ErrorKind::Io, {} };
    bool m_failed { false };
};

inline Result<void> ok() { return {}; }

} // namespace hako

// TRY(expr): evaluates a Result; on error returns the error from the enclosing function, otherwise
// yields the value. __extension__ marks the GNU statement expression as intentional under -Wpedantic.
#define TRY(expr)                                   \
    __extension__({                                 \
        auto _hako_result = (expr);                 \
        if (!_hako_result.has_value())              \
            return std::move(_hako_result).error(); \
        std::move(_hako_result).value();            \
    })
