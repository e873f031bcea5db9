// Option strings in QEMU's style: "value0,key1=value1,key2=value2". parse_key_values() splits one; a part without
// '=' is kept with an empty key (the positional part, e.g. "user" in "--net user,hostfwd=..."). Commas inside
// values can be written as ",," (QEMU's escape).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace hako {

struct KeyValue {
    std::string key; // empty for a positional part
    std::string value;
};

/// Splits `spec` at unescaped commas. Fails on an empty part or a part "=value" with an empty key.
[[nodiscard]] Result<std::vector<KeyValue>> parse_key_values(std::string_view spec);

/// "on"/"off" (also "yes"/"no", "true"/"false", "1"/"0"); nullopt for anything else.
std::optional<bool> parse_on_off(std::string_view value);

} // namespace hako
