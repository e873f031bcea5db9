#include "base/size.h"

#include <cctype>

namespace hako {

std::optional<uint64_t> parse_memory_size(std::string_view text)
{
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0])))
        return std::nullopt;
    uint64_t value = 0;
    size_t i = 0;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
        if (__builtin_mul_overflow(value, 10u, &value) || __builtin_add_overflow(value, static_cast<uint64_t>(text[i] - '0'), &value))
            return std::nullopt;
    }
    std::string_view suffix = text.substr(i);
    unsigned shift = 20; // no suffix: MiB
    if (!suffix.empty()) {
        switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
        case 'B': shift = 0; break;
        case 'K': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        case 'T': shift = 40; break;
        default: return std::nullopt;
        }
        std::string_view rest = suffix.substr(1);
        if (!(rest.empty() || rest == "B" || rest == "b" || rest == "iB" || rest == "ib") || (shift == 0 && !rest.empty()))
            return std::nullopt;
    }
    if (shift && value > (~0ull >> shift))
        return std::nullopt;
    return value << shift;
}

} // namespace hako
