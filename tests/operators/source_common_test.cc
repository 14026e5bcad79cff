#include "operators/source_common.h"

#include <doctest/doctest.h>

#include <vector>

namespace streamrun {
namespace {

TEST_CASE("MetaSlotsOf: the Kafka metadata slots of a layout, `line` only for text") {
  const Layout layout = {{"userId"},    {"$key"},     {"line"},    {"$headers", "trace"},
                         {"$key", "a"}, {"$headers"}, {"$offset"}, {"$headers", "a", "b"}};
  const std::vector<MetaSlot> json = MetaSlotsOf(layout, /*text_line=*/false);
  REQUIRE(json.size() == 4);
  CHECK((json[0].slot == 1 && json[0].meta == RecordMeta::kKey));
  CHECK((json[1].slot == 3 && json[1].meta == RecordMeta::kHeader && json[1].header == "trace"));
  CHECK((json[2].slot == 5 && json[2].meta == RecordMeta::kHeaders));
  CHECK((json[3].slot == 6 && json[3].meta == RecordMeta::kOffset));
  const std::vector<MetaSlot> text = MetaSlotsOf(layout, /*text_line=*/true);
  REQUIRE(text.size() == 5);
  CHECK((text[1].slot == 2 && text[1].meta == RecordMeta::kLine));
}

}  // namespace
}  // namespace streamrun
