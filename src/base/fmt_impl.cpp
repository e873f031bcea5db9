// fmt's compiled part, built once into hako_core.
//
// Debian's libfmt-dev ships fmt only as a shared library or header-only. hako links neither: the shared library
// cost resident memory (bench/RESULTS.md, start-up), and header-only mode (FMT_HEADER_ONLY) re-compiles fmt's
// implementation in every file that includes <fmt/format.h>, which more than doubled the build's CPU time. Instead every
// file uses fmt's headers in the ordinary (library) mode and this one file compiles the library's implementation,
// format-inl.h, with its non-template functions defined here exactly once.
#include <fmt/format-inl.h>

namespace fmt {
inline namespace v9 {
namespace detail {

// format.h declares these `extern template` when not header-only; their one instantiation lives here.
template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto thousands_sep_impl<wchar_t>(locale_ref) -> thousands_sep_result<wchar_t>;
template auto decimal_point_impl<char>(locale_ref) -> char;
template auto decimal_point_impl<wchar_t>(locale_ref) -> wchar_t;

}  // namespace detail
}  // namespace v9
}  // namespace fmt
