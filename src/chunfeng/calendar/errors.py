"""Errors of the calendar domain. Messages are Chinese: they are shown to officials as they are."""


class CalendarError(Exception):
    """Base of the calendar errors."""


class CalendarNotCovered(CalendarError):
    """A date in a year whose holiday arrangement nobody has imported: no working day can be counted there."""

    def __init__(self, year: int):
        self.year = year
        super().__init__(
            f"{year}年的工作日历尚未导入,无法计算{year}年的工作日和申报期限(节假日与调休上班日以国务院办公厅"
            f"关于{year}年部分节假日安排的通知为准)。请系统管理员取得通知全文后运行 chunfeng calendar import 通知文件 导入。")


class NoticeInvalid(CalendarError):
    """A holiday notice that cannot be read, or whose dates disagree with its own weekdays or day counts."""


class CalendarInvalid(CalendarError):
    """Bad input to a calendar command: a month, a date, a count."""
