#include "base/key_value.h"

namespace hako {

Result<std::vector<KeyValue>> parse_key_values(std::string_view spec)
{
    std::vector<KeyValue> out;
    std::string part;
    auto finish = [&]() -> Result<void> {
        if (part.empty())
            return Error(ErrorKind::InvalidArgument, fmt::format("'{}': empty option", spec));
        size_t const eq = part.find('=');
        if (eq == std::string::npos) {
            out.push_back(KeyValue { {}, part });
        } else {
            if (eq == 0)
                return Error(ErrorKind::InvalidArgument, fmt::format("'{}': '{}' has no key", spec, part));
            out.push_back(KeyValue { part.substr(0, eq), part.substr(eq + 1) });
        }
        part.clear();
        return ok();
    };
    for (size_t i = 0; i < spec.size(); ++i) {
        if (spec[i] == ',') {
            if (i + 1 < spec.size() && spec[i + 1] == ',') {
                part += ',';
                ++i;
                continue;
            }
            TRY(finish());
            continue;
        }
        part += spec[i];
    }
    TRY(finish());
    return out;
}

std::optional<bool> parse_on_off(std::string_view value)
{
    if (value == "on" || value == "yes" || value == "true" || value == "1")
        return true;
    if (value == "off" || value == "no" || value == "false" || value == "0")
        return false;
    return std::nullopt;
}

} // namespace hako
