// Calendar arithmetic and RFC 3339 text for epoch milliseconds.
//
// Everything here is UTC and proleptic Gregorian, computed by hand (days-from-civil, after
// Howard Hinnant's algorithms): no locale, time zone database or libc time calls, so results do
// not depend on the machine and the functions are safe on any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace streamrun {

// Days since 1970-01-01 of the civil date y-m-d. REQUIRES: 1 <= m <= 12, 1 <= d <= 31.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);

struct CivilDate {
  int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};
CivilDate CivilFromDays(int64_t days);

bool IsLeapYear(int64_t y);
unsigned DaysInMonth(int64_t y, unsigned m);

// Splits epoch milliseconds into whole days since the epoch and milliseconds into that day
// (0 <= ms_of_day < 86400000), rounding towards negative infinity.
void SplitDays(int64_t millis, int64_t* days, int64_t* ms_of_day);

// Parses an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`. Accepts a
// lowercase `t` and `z` and a space instead of `T` (RFC 3339 section 5.6 allows both). Fractions
// beyond milliseconds are truncated. Second 60 (a leap second) is accepted and counts as the
// first second of the next minute. Returns false for anything else, including dates that do not
// exist (2023-02-29, month 13) and trailing text.
bool ParseRfc3339(std::string_view text, int64_t* millis);

// The length of FormatRfc3339's output.
inline constexpr size_t kRfc3339Length = 24;
// Writes `millis` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (exactly kRfc3339Length bytes) to `out`.
// Returns false, writing nothing, when the year is outside 0..9999.
bool FormatRfc3339(int64_t millis, char* out);

}  // namespace streamrun
