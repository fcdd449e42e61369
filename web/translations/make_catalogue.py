"""Write the English catalogue (en/LC_MESSAGES/messages.po and .mo) from the messages the
window's templates and code use (``pybabel extract``) and the translations below.

    .venv/bin/python -m web.translations.make_catalogue

A test fails when a message has no translation here or the committed files are stale."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po

HERE = Path(__file__).parent
PO = HERE / "en" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
FIXED_DATE = datetime(2026, 1, 1, tzinfo=UTC)

ENGLISH = {
    "%(n)s 个事件": "%(n)s events",
    "%(points)s 分": "%(points)s points",
    "上传的文件超过了允许的大小。": "The uploaded file is larger than allowed.",
    "下载公钥": "download the key",
    "下载签名文件": "Download the signed file",
    "不能出具公开信用报告": "No public credit report for this file",
    "与 #%(seq)s 一致（%(k)s 个哈希）": "consistent with #%(seq)s (%(k)s hashes)",
    "严重失信主体名单": "Serious dishonesty list",
    "主体": "Subject",
    "事件": "Event",
    "事项": "Item",
    "企业名称、名称中的字词或统一社会信用代码": "Enterprise name, part of it, or unified social credit code",
    "依据": "Basis",
    "依据临政函〔2015〕108号建设。": "Built under Lin'an's policy 临政函〔2015〕108号.",
    "信用临安": "Credit Lin'an",
    "信用分随时间的变化": "Credit points over time",
    "信用承诺": "Credit commitments",
    "信用报告": "Credit report",
    "信用查询": "Credit lookup",
    "信用记录": "Credit records",
    "信用评价": "Credit grade",
    "公共信用信息报告": "Public credit information report",
    "公开记录 %(n)s 条": "%(n)s public records",
    "公开透明": "Transparency",
    "公示期满": "Display ended",
    "其他信息": "Other information",
    "决定文号": "Decision number",
    "决定日期": "Decision date",
    "出具时间": "Issued at",
    "出具签名信用报告": "Issue a signed credit report",
    "出错了": "Something went wrong",
    "回到今天": "back to today",
    "基础分": "base points",
    "守信激励名单": "Red list (trustworthy)",
    "密钥": "Key",
    "尚未纳入检查点": "not yet under a checkpoint",
    "已信用修复": "Repaired",
    "已包含（证明 %(n)s 个哈希，已核对）": "included (proof of %(n)s hashes, checked)",
    "已履行": "kept",
    "已撤销": "Revoked",
    "已更正": "Corrected",
    "已移出": "removed",
    "平台公钥": "Platform public key",
    "平台定期签名整个账本的检查点；每个检查点都附有与前一个检查点的一致性证明：保存过旧检查点的人可以确认账本只增未改。":
        "The platform regularly signs a checkpoint of the whole ledger; each comes with a "
        "consistency proof from the one before it, so whoever kept an old checkpoint can "
        "confirm the ledger only grew and was never rewritten.",
    "异议处理中": "Under objection",
    "截至": "As of",
    "打印本页即得纸质报告；纸质报告凭编号与 SHA-256 对应签名文件。":
        "Print this page for a paper report; the number and the SHA-256 tie it to the signed "
        "file.",
    "报告.json": "report.json",
    "报告是平台签名的文件，法院等机关可离线核验；出具记入查询日志。":
        "The report is a file signed by the platform that courts and other bodies verify "
        "offline; issuing it is written to the query log.",
    "报告核验": "Verify a report",
    "报告编号": "Report number",
    "报告编号与文件 SHA-256 的二维码": "QR code of the report number and the file's SHA-256",
    "指纹": "Fingerprint",
    "文件 SHA-256": "File SHA-256",
    "文件太大": "File too large",
    "无": "None",
    "无效": "Invalid",
    "日志序号": "Log index",
    "最新检查点": "Latest checkpoints",
    "最新检查点：%(size)s 个事件，%(time)s 由 %(key)s 签名，根哈希":
        "Latest checkpoint: %(size)s events, signed %(time)s by %(key)s, root hash",
    "有效": "In force",
    "未履行": "broken",
    "未找到": "Not found",
    "未通过的检查": "Failed check",
    "本报告的签名文件由信用临安平台以其密钥签名，可用平台公钥和核验程序离线核验。":
        "This report's signed file is signed by the Credit Lin'an platform's key and can be "
        "verified offline with the platform public key and the verifier.",
    "查看": "Show",
    "查看某一天的档案": "The file as of a day",
    "查询": "Search",
    "查询企业信用": "Look up an enterprise's credit",
    "查询结果": "Results",
    "核验": "Verify",
    "核验使用与法院离线运行相同的核验程序，信任的平台公钥指纹为":
        "Checked by the same verifier courts run offline, trusting the platform key with "
        "fingerprint",
    "核验信用报告": "Verify a credit report",
    "核验报告": "Verify the report",
    "核验程序": "Verifier",
    "检查点": "Checkpoint",
    "每一条记录都由作出决定的部门以其密钥签名，写入只增不改的账本；任何人都可以用平台公钥离线核验。":
        "Every record is signed with the key of the department that decided it and written "
        "to an append-only ledger; anyone can verify it offline with the platform key.",
    "没有找到符合条件的企业。": "No enterprise found.",
    "没有这个主体或记录，或者它不公开（自然人的信息不在公开窗口显示）。":
        "There is no such subject or record, or it is not public (natural persons are not "
        "shown in the public window).",
    "状态": "Status",
    "生效日期": "Takes effect",
    "等级": "Grade",
    "签名事件": "Signed events",
    "签名文件 SHA-256": "Signed file SHA-256",
    "签名机关": "Signed by",
    "红黑名单": "Red and black lists",
    "统一社会信用代码": "Unified social credit code",
    "自然人的信用信息不在公开窗口显示。":
        "Natural persons' credit information is not shown in the public window.",
    "行政处罚": "Administrative penalties",
    "行政许可": "Administrative licences",
    "记入时间": "Recorded at",
    "评价规则版本": "Grading policy version",
    "该主体的签名档案中含有已不公开的记录或申请：签名报告只向主体本人和有权机关出具。":
        "This subject's signed file holds records or applications that are no longer public: "
        "its signed report is given only to the subject itself and to authorised bodies.",
    "请求无法完成": "The request cannot be completed",
    "请求有误": "Bad request",
    "返回信用查询": "Back to credit lookup",
    "这是账本在 %(day)s 所显示的档案（以今天所知为准）。":
        "This is the file as the ledger showed it on %(day)s (as known today).",
    "选择签名报告文件（.json）": "Choose a signed report file (.json)",
    "部门": "Department",
    "信用办登录": "Credit office sign-in",
    "令牌无效，或不是信用办的令牌。": "The token is not valid, or not a credit office token.",
    "信用办令牌": "Credit office token",
    "登录": "Sign in",
    "信用办工作台": "Credit office desk",
    "退出": "Sign out",
    "待处理的异议": "Objections awaiting the office",
    "期限": "due",
    "受理": "Accept",
    "不予受理": "Decline",
    "不予受理的理由": "Reason for declining",
    "作出处理决定": "Rule",
    "处理结果": "Outcome",
    "已记录": "Recorded",
    "延期的理由": "Reason for the extension",
    "延长至20个工作日": "Extend to 20 working days",
    "撤销记录": "Revoke the record",
    "理由": "Reasoning",
    "移出名单": "Remove from the list",
    "终止公示": "End its disclosure",
    "维持原记录": "Keep the record (reject the objection)",
    "请先登录": "Please sign in",
    "显示全部 %(n)s 条": "Show all %(n)s",
    "信用报告总是今天的档案：请回到今天出具。":
        "A credit report is always of today's file: go back to today to issue one.",
}


def extracted() -> list[str]:
    """The messages marked in web/ (Python) and its templates (Jinja2), sorted."""
    method_map = [("templates/**.html", "jinja2"), ("**.py", "python")]
    found = {str(message) for _, _, message, _, _ in extract_from_dir(
        str(HERE.parent), method_map, keywords={"_": None, "gettext": None})}
    return sorted(found)


def catalogue() -> tuple[bytes, bytes, list[str]]:
    """(the .po, the .mo, messages without a translation)."""
    # fixed dates: the same messages give the same bytes (the .mo carries its header)
    english = Catalog(locale="en", project="credit-ledger", fuzzy=False,
                      creation_date=FIXED_DATE, revision_date=FIXED_DATE)
    missing = []
    for message in extracted():
        text = ENGLISH.get(message)
        if text is None:
            missing.append(message)
        english.add(message, text or "")
    po, mo = io.BytesIO(), io.BytesIO()
    write_po(po, english, omit_header=True, sort_output=True)
    write_mo(mo, english)
    return po.getvalue(), mo.getvalue(), missing


def main() -> None:
    po, mo, missing = catalogue()
    if missing:
        sys.exit("no English for: " + "; ".join(missing))
    PO.parent.mkdir(parents=True, exist_ok=True)
    PO.write_bytes(po)
    MO.write_bytes(mo)
    print(f"wrote {PO} and {MO.name}")


if __name__ == "__main__":
    main()
