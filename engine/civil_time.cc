// Calendar arithmetic and RFC 3339 parsing and formatting (see civil_time.h).
#include "engine/civil_time.h"

#include <cstdint>

namespace streamrun {

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                 // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                       // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;               // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                  // [1, 12]
  return CivilDate{y + (m <= 2), m, d};
}

bool IsLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

void SplitDays(int64_t millis, int64_t* days, int64_t* ms_of_day) {
  constexpr int64_t kDay = 86400000;
  int64_t d = millis / kDay;
  int64_t r = millis % kDay;
  if (r < 0) {
    r += kDay;
    --d;
  }
  *days = d;
  *ms_of_day = r;
}

namespace {

// Reads exactly `n` digits at text[*pos]; advances *pos.
bool Digits(std::string_view text, size_t* pos, size_t n, unsigned* out) {
  if (*pos + n > text.size()) return false;
  unsigned v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view text, size_t* pos, char c) {
  if (*pos >= text.size() || text[*pos] != c) return false;
  ++*pos;
  return true;
}

}  // namespace

bool ParseRfc3339(std::string_view text, int64_t* millis) {
  size_t pos = 0;
  unsigned year, month, day, hour, minute, second;
  if (!Digits(text, &pos, 4, &year) || !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &month) ||
      !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &day)) {
    return false;
  }
  if (pos >= text.size() || (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ')) {
    return false;
  }
  ++pos;
  if (!Digits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') ||
      !Digits(text, &pos, 2, &minute) || !Expect(text, &pos, ':') ||
      !Digits(text, &pos, 2, &second)) {
    return false;
  }
  unsigned ms = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    unsigned scale = 100;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      ms += static_cast<unsigned>(text[pos] - '0') * scale;
      scale /= 10;  // digits after the third add 0: truncated
      ++pos;
    }
    if (pos == start) return false;  // "12:00:00." has no fraction
  }
  int64_t offset_minutes = 0;
  if (pos >= text.size()) return false;  // the offset is required
  char z = text[pos];
  if (z == 'Z' || z == 'z') {
    ++pos;
  } else if (z == '+' || z == '-') {
    ++pos;
    unsigned oh, om;
    if (!Digits(text, &pos, 2, &oh) || !Expect(text, &pos, ':') || !Digits(text, &pos, 2, &om)) {
      return false;
    }
    if (oh > 23 || om > 59) return false;
    offset_minutes = (z == '-' ? -1 : 1) * static_cast<int64_t>(oh * 60 + om);
  } else {
    return false;
  }
  if (pos != text.size()) return false;
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return false;
  if (hour > 23 || minute > 59 || second > 60) return false;

  int64_t days = DaysFromCivil(year, month, day);
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  *millis = secs * 1000 + ms;
  return true;
}

namespace {
void Put(char* out, unsigned v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}
}  // namespace

bool FormatRfc3339(int64_t millis, char* out) {
  int64_t days, ms_of_day;
  SplitDays(millis, &days, &ms_of_day);
  CivilDate date = CivilFromDays(days);
  if (date.year < 0 || date.year > 9999) return false;
  auto ms = static_cast<unsigned>(ms_of_day);
  Put(out, static_cast<unsigned>(date.year), 4);
  out[4] = '-';
  Put(out + 5, date.month, 2);
  out[7] = '-';
  Put(out + 8, date.day, 2);
  out[10] = 'T';
  Put(out + 11, ms / 3600000, 2);
  out[13] = ':';
  Put(out + 14, ms / 60000 % 60, 2);
  out[16] = ':';
  Put(out + 17, ms / 1000 % 60, 2);
  out[19] = '.';
  Put(out + 20, ms % 1000, 3);
  out[23] = 'Z';
  return true;
}

}  // namespace streamrun
