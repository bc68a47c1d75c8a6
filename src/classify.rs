//! Stage `classify`: what kind of request is this and in which language do we answer? Pure.
//!
//! Today: the language (`zh-Hans`, `zh-Hant`, `en`, `other`), from the share of Han characters and,
//! among them, characters that exist only in Simplified or only in Traditional script. Category,
//! severity, urgency and VIP follow (issue #4) in this same module.

use crate::model::Language;
use serde::Serialize;

/// Characters written differently in Simplified script (common in support mail).
const SIMPLIFIED_ONLY: &str = "这们个国说时来对会学问题号单务请谢么发经还过没见现长开关门东车书买卖给让认识进电话处钱应实际网络办机业头总帮体历运货费态报复样边难称记录饭满员订账户据级统资讯设备确联产质换赔标询诉议为险该与专动听条规则导师结红绿蓝图场价优购试验证码银钟点间无从转达讲读写错误乐亲爱妈状尽决软线页谁吗气";
/// Their Traditional counterparts, and other Traditional-only characters.
const TRADITIONAL_ONLY: &str = "這們個國說時來對會學問題號單務請謝麼發經還過沒見現長開關門東車書買賣給讓認識進電話處錢應實際網絡辦機業頭總幫體歷運貨費態報復樣邊難稱記錄飯滿員訂賬帳戶據級統資訊設備確聯產質換賠標詢訴議為險該與專動聽條規則導師結紅綠藍圖場價優購試驗證碼銀鐘點間無從轉達講讀寫錯誤樂親愛媽狀盡決軟線頁誰嗎氣";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub language: Language,
}

pub fn classify(subject: &str, text: &str) -> Classification {
    Classification {
        language: detect_language(subject, text),
    }
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// The language of a mail, from its subject and (new) text.
pub fn detect_language(subject: &str, text: &str) -> Language {
    let (mut han, mut latin, mut other, mut simp, mut trad) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    for c in subject.chars().chain(text.chars()) {
        if is_han(c) {
            han += 1;
            if SIMPLIFIED_ONLY.contains(c) {
                simp += 1;
            } else if TRADITIONAL_ONLY.contains(c) {
                trad += 1;
            }
        } else if c.is_ascii_alphabetic() {
            latin += 1;
        } else if c.is_alphabetic() && !matches!(c as u32, 0x3040..=0x30FF | 0xAC00..=0xD7AF) {
            // Accented Latin, Cyrillic …: not English. Kana and Hangul count as "other" below.
            other += 1;
        } else if c.is_alphabetic() {
            other += 2;
        }
    }
    // A Chinese mail often carries English product names; a few Han characters in an English
    // mail (a name) do not make it Chinese. One Han character carries about as much as a word.
    if han > 0 && han * 4 >= latin / 2 && han >= 2 {
        return if trad > simp {
            Language::ZhHant
        } else {
            Language::ZhHans
        };
    }
    if latin == 0 && other == 0 {
        return if han > 0 {
            Language::ZhHans
        } else {
            Language::Other
        };
    }
    if other * 5 > latin {
        return Language::Other;
    }
    Language::En
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplified_traditional_and_english_are_told_apart() {
        assert_eq!(
            detect_language("退款进度", "您好，我的退款什么时候到账？"),
            Language::ZhHans
        );
        assert_eq!(
            detect_language("退款進度", "您好，我的退款什麼時候到賬？謝謝"),
            Language::ZhHant
        );
        assert_eq!(
            detect_language("Refund", "Hello, when will my refund arrive?"),
            Language::En
        );
    }

    #[test]
    fn mixed_chinese_with_english_product_names_is_chinese() {
        assert_eq!(
            detect_language(
                "iPhone 15 Pro Max 屏幕问题",
                "我的 iPhone 15 Pro Max 屏幕闪烁，AppleCare 能修吗"
            ),
            Language::ZhHans
        );
    }

    #[test]
    fn an_english_mail_signed_with_a_chinese_name_is_english() {
        assert_eq!(
            detect_language(
                "Order status",
                "Could you tell me where my order is? It has been a week. Thanks, 王伟"
            ),
            Language::En
        );
    }

    #[test]
    fn other_scripts_are_other() {
        assert_eq!(detect_language("Заказ", "Где мой заказ?"), Language::Other);
    }
}
