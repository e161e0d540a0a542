//! Pure: when a trigger next starts its pipelines, from its definition and a `now` passed in.
//!
//! The rules follow ADF's documentation of schedule and tumbling-window triggers
//! (learn.microsoft.com/azure/data-factory/how-to-create-schedule-trigger and
//! how-to-create-tumbling-window-trigger) and the 2018-06-01 spec (`ScheduleTriggerRecurrence`,
//! `RecurrenceSchedule`, `TumblingWindowTrigger`):
//! - `startTime` and `endTime` are wall-clock times in `timeZone` (a Windows zone name, `UTC` by default);
//!   a time with `Z` or an offset is taken as that instant.
//! - `Minute` and `Hour` recurrences step by exact durations from `startTime`; `Day`, `Week` and `Month`
//!   keep the wall-clock time across daylight-saving changes.
//! - A `schedule` gives the `hours` and `minutes` of each run (by default those of `startTime`),
//!   `weekDays` for a weekly recurrence, and `monthDays` (`-1` is the last day) or `monthlyOccurrences`
//!   for a monthly one. A month without the day (the 31st in April) has no run that month.
//! - A wall-clock time that does not exist on a daylight-saving day runs at the same offset after the
//!   change (02:30 becomes 03:30); a time that occurs twice runs at the first.
//! - A tumbling window runs when its window ends, plus its `delay`; its times are UTC.
//!
//! Anything else (an unknown frequency, a schedule the frequency does not allow, a zone ADF does not accept)
//! is an error saying why: the product reports the next run as unknown rather than guess.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use serde_json::Value;

/// How far ahead a run is searched for before the recurrence is called unevaluable.
const SEARCH_YEARS: i16 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frequency {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

fn frequency(value: Option<&Value>) -> Result<Frequency, String> {
    let text = value
        .and_then(Value::as_str)
        .ok_or("the recurrence has no frequency")?;
    Ok(match text.to_ascii_lowercase().as_str() {
        "minute" => Frequency::Minute,
        "hour" => Frequency::Hour,
        "day" => Frequency::Day,
        "week" => Frequency::Week,
        "month" => Frequency::Month,
        _ => {
            return Err(format!(
                "the frequency `{text}` is not one a trigger runs on"
            ));
        }
    })
}

fn interval(value: Option<&Value>) -> Result<i64, String> {
    match value {
        None | Some(Value::Null) => Ok(1),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=1_000_000).contains(&n) => Ok(n),
            _ => Err(format!("the interval {v} is not a positive whole number")),
        },
    }
}

/// A `startTime`/`endTime`: an instant if it carries `Z` or an offset, else a wall-clock time in `zone`.
fn instant(text: &str, zone: &TimeZone) -> Result<Timestamp, String> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil: DateTime = text
        .parse()
        .map_err(|_| format!("`{text}` is not a date and time"))?;
    zone.to_ambiguous_timestamp(civil)
        .compatible()
        .map_err(|e| format!("`{text}` has no instant in its time zone: {e}"))
}

fn time_field<'a>(recurrence: &'a Value, key: &str) -> Option<&'a str> {
    recurrence.get(key).and_then(Value::as_str)
}

fn int_list(
    schedule: &Value,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Vec<i64>, String> {
    let Some(items) = schedule.get(key) else {
        return Ok(Vec::new());
    };
    let Some(items) = items.as_array() else {
        return if items.is_null() {
            Ok(Vec::new())
        } else {
            Err(format!("schedule.{key} is not a list"))
        };
    };
    let mut out = Vec::new();
    for item in items {
        match item.as_i64() {
            Some(n) if range.contains(&n) => out.push(n),
            _ => {
                return Err(format!(
                    "schedule.{key} holds {item}, which is out of range"
                ));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn weekday(name: &str) -> Result<Weekday, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sunday" => Weekday::Sunday,
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        _ => return Err(format!("`{name}` is not a day of the week")),
    })
}

fn weekdays(schedule: &Value) -> Result<Vec<Weekday>, String> {
    match schedule.get("weekDays") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|d| {
                d.as_str()
                    .ok_or("schedule.weekDays holds a non-name".to_string())
                    .and_then(weekday)
            })
            .collect(),
        Some(_) => Err("schedule.weekDays is not a list".into()),
    }
}

/// `(day of week, occurrence)`: occurrence 1..=5 from the start of the month, -1..=-5 from its end.
fn monthly_occurrences(schedule: &Value) -> Result<Vec<(Weekday, i8)>, String> {
    match schedule.get("monthlyOccurrences") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|o| {
                let day = o
                    .get("day")
                    .and_then(Value::as_str)
                    .ok_or("a monthly occurrence has no day")
                    .map_err(str::to_string)
                    .and_then(weekday)?;
                let n = o.get("occurrence").and_then(Value::as_i64).unwrap_or(1);
                if n == 0 || !(-5..=5).contains(&n) {
                    return Err(format!("the monthly occurrence {n} is out of range"));
                }
                Ok((day, n as i8))
            })
            .collect(),
        Some(_) => Err("schedule.monthlyOccurrences is not a list".into()),
    }
}

/// The next run of a schedule trigger's `recurrence` at or after `now`; `Ok(None)` when it has ended.
pub fn schedule_next_run(recurrence: &Value, now: Timestamp) -> Result<Option<Timestamp>, String> {
    let frequency = frequency(recurrence.get("frequency"))?;
    let interval = interval(recurrence.get("interval"))?;
    let zone =
        super::windows_zones::time_zone(time_field(recurrence, "timeZone").unwrap_or("UTC"))?;
    let start = instant(
        time_field(recurrence, "startTime").ok_or("the recurrence has no startTime")?,
        &zone,
    )?;
    let end = time_field(recurrence, "endTime")
        .map(|t| instant(t, &zone))
        .transpose()?;
    let not_before = start.max(now);
    if end.is_some_and(|end| not_before > end) {
        return Ok(None);
    }
    let schedule = recurrence.get("schedule").filter(|s| !s.is_null());
    let next = match (frequency, schedule) {
        (Frequency::Minute | Frequency::Hour, None) => {
            let unit = if frequency == Frequency::Minute {
                60
            } else {
                3600
            };
            let step = interval
                .checked_mul(unit)
                .ok_or("the interval is too large")?;
            let elapsed = now.as_second() - start.as_second();
            let steps = if elapsed <= 0 {
                0
            } else {
                (elapsed + step - 1) / step
            };
            start
                .checked_add(SignedDuration::from_secs(steps.saturating_mul(step)))
                .map_err(|e| e.to_string())?
        }
        (Frequency::Hour, Some(schedule)) => {
            hourly_with_minutes(schedule, interval, start, now, &zone)?
        }
        (Frequency::Minute, Some(_)) => {
            return Err("a schedule cannot be given with a frequency of Minute".into());
        }
        (_, schedule) => calendar(frequency, schedule, interval, start, not_before, &zone)?,
    };
    Ok(match end {
        Some(end) if next > end => None,
        _ => Some(next),
    })
}

/// `Hour` with `schedule.minutes`: every `interval` hours from the start's hour, at those minutes.
fn hourly_with_minutes(
    schedule: &Value,
    interval: i64,
    start: Timestamp,
    now: Timestamp,
    zone: &TimeZone,
) -> Result<Timestamp, String> {
    for key in ["hours", "weekDays", "monthDays", "monthlyOccurrences"] {
        if schedule.get(key).is_some_and(|v| !v.is_null()) {
            return Err(format!(
                "schedule.{key} cannot be given with a frequency of Hour"
            ));
        }
    }
    let minutes = int_list(schedule, "minutes", 0..=59)?;
    let local = zone.to_datetime(start);
    let mut minutes_or_start = minutes;
    if minutes_or_start.is_empty() {
        minutes_or_start.push(i64::from(local.minute()));
    }
    let hour_start = zone
        .to_ambiguous_timestamp(local.date().at(local.hour(), 0, 0, 0))
        .compatible()
        .map_err(|e| e.to_string())?;
    let step = interval * 3600;
    let elapsed = (now.as_second() - hour_start.as_second()).max(0);
    // Begin one period early: a later minute of the previous period may still be ahead.
    let first = (elapsed / step - 1).max(0);
    for period in first..first + 4 {
        let base = hour_start
            .checked_add(SignedDuration::from_secs(period * step))
            .map_err(|e| e.to_string())?;
        for minute in &minutes_or_start {
            let run = base
                .checked_add(SignedDuration::from_mins(*minute))
                .map_err(|e| e.to_string())?;
            if run >= start && run >= now {
                return Ok(run);
            }
        }
    }
    Err("no run found for the hourly schedule".into())
}

/// `Day`, `Week` and `Month`: whole days in the zone's calendar, at wall-clock times.
fn calendar(
    frequency: Frequency,
    schedule: Option<&Value>,
    interval: i64,
    start: Timestamp,
    not_before: Timestamp,
    zone: &TimeZone,
) -> Result<Timestamp, String> {
    let empty = Value::Null;
    let schedule = schedule.unwrap_or(&empty);
    let local_start = zone.to_datetime(start);
    let has_schedule = !schedule.is_null();
    let mut hours = int_list(schedule, "hours", 0..=23)?;
    let mut minutes = int_list(schedule, "minutes", 0..=59)?;
    if hours.is_empty() {
        hours.push(i64::from(local_start.hour()));
    }
    if minutes.is_empty() {
        minutes.push(i64::from(local_start.minute()));
    }
    let second = if has_schedule {
        0
    } else {
        local_start.second()
    };
    let week_days = weekdays(schedule)?;
    let month_days = int_list(schedule, "monthDays", -31..=31)?;
    if month_days.contains(&0) {
        return Err("schedule.monthDays holds 0".into());
    }
    let occurrences = monthly_occurrences(schedule)?;
    match frequency {
        Frequency::Day
            if !week_days.is_empty() || !month_days.is_empty() || !occurrences.is_empty() =>
        {
            return Err("a daily recurrence cannot name week days or month days".into());
        }
        Frequency::Week if !month_days.is_empty() || !occurrences.is_empty() => {
            return Err("a weekly recurrence cannot name month days".into());
        }
        Frequency::Month if !week_days.is_empty() => {
            return Err("a monthly recurrence names days with monthDays or monthlyOccurrences, not weekDays".into());
        }
        _ => {}
    }
    let start_date = local_start.date();
    let from = zone.to_datetime(not_before).date();
    // The day before, so a run late on `from - 1` in a zone behind the search start is not missed.
    let mut day = from.yesterday().map_err(|e| e.to_string())?.max(start_date);
    let last = from
        .checked_add(Span::new().years(SEARCH_YEARS))
        .map_err(|e| e.to_string())?;
    while day <= last {
        if day_matches(
            frequency,
            interval,
            start_date,
            day,
            &week_days,
            &month_days,
            &occurrences,
        )? {
            for hour in &hours {
                for minute in &minutes {
                    let civil = day.at(*hour as i8, *minute as i8, second, 0);
                    let run = zone
                        .to_ambiguous_timestamp(civil)
                        .compatible()
                        .map_err(|e| e.to_string())?;
                    if run >= not_before {
                        return Ok(run);
                    }
                }
            }
        }
        day = day.tomorrow().map_err(|e| e.to_string())?;
    }
    Err(format!("no run falls within {SEARCH_YEARS} years"))
}

fn day_matches(
    frequency: Frequency,
    interval: i64,
    start: Date,
    day: Date,
    week_days: &[Weekday],
    month_days: &[i64],
    occurrences: &[(Weekday, i8)],
) -> Result<bool, String> {
    Ok(match frequency {
        Frequency::Day => {
            let days = day.duration_since(start).as_hours() / 24;
            days >= 0 && days % interval == 0
        }
        Frequency::Week => {
            // Weeks begin on Sunday, as ADF's DaysOfWeek enumeration does.
            let week_of = |d: Date| -> Result<Date, String> {
                d.checked_sub(Span::new().days(d.weekday().to_sunday_zero_offset()))
                    .map_err(|e| e.to_string())
            };
            let weeks = week_of(day)?.duration_since(week_of(start)?).as_hours() / (24 * 7);
            let on_day = if week_days.is_empty() {
                day.weekday() == start.weekday()
            } else {
                week_days.contains(&day.weekday())
            };
            weeks >= 0 && weeks % interval == 0 && on_day
        }
        Frequency::Month => {
            let months = (i64::from(day.year()) - i64::from(start.year())) * 12
                + i64::from(day.month())
                - i64::from(start.month());
            if months < 0 || months % interval != 0 {
                return Ok(false);
            }
            let length = i64::from(day.days_in_month());
            let d = i64::from(day.day());
            let by_day = month_days.iter().any(|m| {
                if *m > 0 {
                    *m == d
                } else {
                    length + 1 + *m == d
                }
            });
            let by_occurrence = occurrences.iter().any(|(weekday, n)| {
                day.nth_weekday_of_month(*n, *weekday)
                    .is_ok_and(|nth| nth == day)
            });
            if month_days.is_empty() && occurrences.is_empty() {
                d == i64::from(start.day())
            } else {
                by_day || by_occurrence
            }
        }
        Frequency::Minute | Frequency::Hour => false,
    })
}

/// The next run of a tumbling-window trigger: the end of the first window ending at or after `now`
/// (less its `delay`), within `endTime`. Times are UTC.
pub fn tumbling_next_run(
    type_properties: &Value,
    now: Timestamp,
) -> Result<Option<Timestamp>, String> {
    let frequency = frequency(type_properties.get("frequency"))?;
    let interval = interval(type_properties.get("interval"))?;
    let utc = TimeZone::UTC;
    let start = instant(
        time_field(type_properties, "startTime").ok_or("the trigger has no startTime")?,
        &utc,
    )?;
    let end = time_field(type_properties, "endTime")
        .map(|t| instant(t, &utc))
        .transpose()?;
    let delay = match type_properties.get("delay") {
        None | Some(Value::Null) => SignedDuration::ZERO,
        Some(Value::String(text)) => timespan(text)?,
        Some(other) => return Err(format!("the delay {other} is not a time span")),
    };
    let window_end = |k: i64| -> Result<Timestamp, String> {
        match frequency {
            Frequency::Minute | Frequency::Hour => {
                let unit = if frequency == Frequency::Minute {
                    60
                } else {
                    3600
                };
                start
                    .checked_add(SignedDuration::from_secs(
                        k.saturating_mul(interval).saturating_mul(unit),
                    ))
                    .map_err(|e| e.to_string())
            }
            Frequency::Month => {
                let civil = utc.to_datetime(start);
                let months = k.saturating_mul(interval);
                let shifted = civil
                    .checked_add(Span::new().try_months(months).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                utc.to_ambiguous_timestamp(shifted)
                    .compatible()
                    .map_err(|e| e.to_string())
            }
            Frequency::Day | Frequency::Week => {
                Err("a tumbling window runs by Minute, Hour or Month".to_string())
            }
        }
    };
    // Window k (from 1) ends at start + k·interval; find the first whose end + delay is at or after now.
    let k = match frequency {
        Frequency::Minute | Frequency::Hour => {
            let unit = if frequency == Frequency::Minute {
                60
            } else {
                3600
            };
            let step = interval * unit;
            let elapsed = now.as_second() - start.as_second() - delay.as_secs();
            if elapsed <= step {
                1
            } else {
                (elapsed + step - 1) / step
            }
        }
        _ => {
            let (from, to) = (utc.to_datetime(start), utc.to_datetime(now));
            let months = (i64::from(to.year()) - i64::from(from.year())) * 12
                + i64::from(to.month())
                - i64::from(from.month());
            (months / interval).max(1)
        }
    };
    let first = k;
    for k in first..first + 12 * i64::from(SEARCH_YEARS) + 2 {
        let window = window_end(k)?;
        if end.is_some_and(|end| window > end) {
            return Ok(None);
        }
        let run = window.checked_add(delay).map_err(|e| e.to_string())?;
        if run >= now {
            return Ok(Some(run));
        }
    }
    Err(format!("no window ends within {SEARCH_YEARS} years"))
}

/// A .NET time span as ADF writes a delay: `hh:mm:ss` or `d.hh:mm:ss`.
fn timespan(text: &str) -> Result<SignedDuration, String> {
    let bad = || format!("the delay `{text}` is not a time span (d.hh:mm:ss)");
    let (days, clock) = match text.split_once('.') {
        Some((d, rest)) if rest.contains(':') && !d.contains(':') => {
            (d.parse::<i64>().map_err(|_| bad())?, rest)
        }
        _ => (0, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return Err(bad());
    };
    let h: i64 = h.parse().map_err(|_| bad())?;
    let m: i64 = m.parse().map_err(|_| bad())?;
    let s: f64 = s.parse().map_err(|_| bad())?;
    if days < 0 || !(0..24).contains(&h) || !(0..60).contains(&m) || !(0.0..60.0).contains(&s) {
        return Err(bad());
    }
    Ok(SignedDuration::from_secs(
        days * 86_400 + h * 3600 + m * 60 + s as i64,
    ))
}
