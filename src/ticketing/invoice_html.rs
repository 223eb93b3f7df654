//! An invoice rendered as a self-contained HTML document (pretix's
//! `invoice_renderer`; the only renderer here). Everything comes from the
//! stored invoice and its lines, so the same invoice always renders the
//! same, whatever changed in the order, the event or the settings since.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::exchange_rates::convert;
use super::money::format_minor;
use crate::entities::{invoice, invoice_line};

/// The identifier of the renderer, as `Event.invoiceRenderer` reports it.
pub const RENDERER: &str = "html";

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escaped text whose line breaks become `<br>`.
fn lines(text: &str) -> String {
    text.lines().map(escape).collect::<Vec<_>>().join("<br>")
}

fn rate(rate_bp: i32) -> String {
    let rate = format_minor(i64::from(rate_bp));
    let rate = rate.trim_end_matches('0').trim_end_matches('.');
    format!("{rate} %")
}

/// Renders `invoice` with its `lines`; `refers` is the number of the invoice
/// a cancellation corrects.
pub fn render(
    invoice: &invoice::Model,
    lines_of_invoice: &[invoice_line::Model],
    refers: Option<&str>,
) -> String {
    let currency = escape(&invoice.currency);
    let title = if invoice.is_cancellation {
        "Cancellation"
    } else {
        "Invoice"
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <title>{title} {number}</title>\
         <style>body{{font-family:sans-serif;max-width:48em;margin:2em auto}}\
         table{{width:100%;border-collapse:collapse}}td,th{{padding:.3em;border-bottom:1px solid #ccc;text-align:left}}\
         .amount{{text-align:right}}footer{{font-size:.8em;text-align:center;margin-top:3em}}</style>\
         </head><body>\n",
        lang = escape(&invoice.locale),
        number = escape(&invoice.full_invoice_no),
    );
    let _ = write!(
        html,
        "<header><p class=\"from\">{from}</p><p class=\"to\">{to}</p></header>\n\
         <h1>{title} {number}</h1>\n<p>Date: {date}</p>\n",
        from = lines(&invoice.invoice_from),
        to = lines(&invoice.invoice_to),
        number = escape(&invoice.full_invoice_no),
        date = invoice.date.format("%Y-%m-%d"),
    );
    if let Some(refers) = refers {
        let _ = writeln!(
            html,
            "<p class=\"refers\">Cancels invoice {}</p>",
            escape(refers)
        );
    }
    if !invoice.introductory_text.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", lines(&invoice.introductory_text));
    }
    html.push_str(
        "<table><thead><tr><th>Description</th><th>Tax rate</th>\
         <th class=\"amount\">Tax</th><th class=\"amount\">Amount</th></tr></thead><tbody>\n",
    );
    let mut total = 0_i64;
    let mut taxes: BTreeMap<(i32, &str), (i64, i64)> = BTreeMap::new();
    for line in lines_of_invoice {
        total += line.gross_value_minor;
        let entry = taxes
            .entry((line.tax_rate_bp, line.tax_name.as_str()))
            .or_default();
        entry.0 += line.gross_value_minor;
        entry.1 += line.tax_value_minor;
        let mut description = escape(&line.description);
        if let Some(name) = line.attendee_name.as_deref().filter(|n| !n.is_empty()) {
            let _ = write!(description, "<br><small>{}</small>", escape(name));
        }
        if let Some(from) = line.event_date_from {
            let _ = write!(
                description,
                "<br><small>{}</small>",
                from.format("%Y-%m-%d %H:%M UTC")
            );
        }
        let _ = writeln!(
            html,
            "<tr><td>{description}</td><td>{rate}</td><td class=\"amount\">{tax} {currency}</td>\
             <td class=\"amount\">{gross} {currency}</td></tr>",
            rate = rate(line.tax_rate_bp),
            tax = format_minor(line.tax_value_minor),
            gross = format_minor(line.gross_value_minor),
        );
    }
    let _ = writeln!(
        html,
        "</tbody><tfoot><tr><th colspan=\"3\">Total</th>\
         <th class=\"amount\">{total} {currency}</th></tr></tfoot></table>",
        total = format_minor(total),
    );
    let taxed: Vec<_> = taxes.iter().filter(|((bp, _), _)| *bp != 0).collect();
    if !taxed.is_empty() {
        html.push_str("<table class=\"taxes\"><thead><tr><th>Tax</th><th class=\"amount\">Net</th><th class=\"amount\">Tax</th><th class=\"amount\">Gross</th></tr></thead><tbody>\n");
        for ((bp, name), (gross, tax)) in &taxed {
            let _ = writeln!(
                html,
                "<tr><td>{name} {rate}</td><td class=\"amount\">{net} {currency}</td>\
                 <td class=\"amount\">{tax} {currency}</td><td class=\"amount\">{gross} {currency}</td></tr>",
                name = escape(name),
                rate = rate(*bp),
                net = format_minor(gross - tax),
                tax = format_minor(*tax),
                gross = format_minor(*gross),
            );
        }
        html.push_str("</tbody></table>\n");
    }
    foreign_figures(&mut html, invoice, &taxes, total);
    if invoice.payment_provider_stamp == "paid" {
        html.push_str("<p class=\"stamp\">Paid</p>\n");
    }
    for text in [&invoice.payment_provider_text, &invoice.additional_text] {
        if !text.is_empty() {
            let _ = writeln!(html, "<p>{}</p>", lines(text));
        }
    }
    if !invoice.footer_text.is_empty() {
        let _ = writeln!(html, "<footer>{}</footer>", lines(&invoice.footer_text));
    }
    html.push_str("</body></html>\n");
    html
}

/// The tax totals and the total in the invoice's foreign display currency,
/// at the rate it recorded when issued (pretix's wording).
fn foreign_figures(
    html: &mut String,
    invoice: &invoice::Model,
    taxes: &BTreeMap<(i32, &str), (i64, i64)>,
    total: i64,
) {
    let (Some(display), Some(rate), Some(date)) = (
        invoice.foreign_currency_display.as_deref(),
        invoice.foreign_currency_rate.as_deref(),
        invoice.foreign_currency_rate_date,
    ) else {
        return;
    };
    let shown = |minor: i64| convert(minor, rate).map_or_else(String::new, format_minor);
    let display = escape(display);
    let _ = writeln!(
        html,
        "<p class=\"foreign\">Using the conversion rate of 1:{rate} as published by {source} \
         on {date}, this corresponds to:</p>",
        rate = escape(rate),
        source = escape(
            invoice
                .foreign_currency_rate_source
                .as_deref()
                .unwrap_or("")
        ),
        date = date.format("%Y-%m-%d"),
    );
    html.push_str("<table class=\"foreign\"><thead><tr><th>Tax</th><th class=\"amount\">Net</th><th class=\"amount\">Tax</th><th class=\"amount\">Gross</th></tr></thead><tbody>\n");
    for ((bp, name), (gross, tax)) in taxes.iter().filter(|((bp, _), _)| *bp != 0) {
        let _ = writeln!(
            html,
            "<tr><td>{name} {rate}</td><td class=\"amount\">{net} {display}</td>\
             <td class=\"amount\">{tax} {display}</td><td class=\"amount\">{gross} {display}</td></tr>",
            name = escape(name),
            rate = self::rate(*bp),
            net = shown(gross - tax),
            tax = shown(*tax),
            gross = shown(*gross),
        );
    }
    let _ = writeln!(
        html,
        "</tbody><tfoot><tr><th colspan=\"3\">Total</th>\
         <th class=\"amount\">{total} {display}</th></tr></tfoot></table>",
        total = shown(total),
    );
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone as _, Utc};

    use super::*;

    fn invoice(is_cancellation: bool) -> invoice::Model {
        invoice::Model {
            id: 1,
            organizer_id: 1,
            event_id: 1,
            order_id: 1,
            prefix: "CONF-".to_owned(),
            invoice_no: 7,
            full_invoice_no: "CONF-00007".to_owned(),
            is_cancellation,
            refers_id: None,
            invoice_from: "Org <script>\nMain Street 1".to_owned(),
            invoice_to: "Ada & Co".to_owned(),
            date: NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default(),
            locale: "en".to_owned(),
            currency: "EUR".to_owned(),
            introductory_text: String::new(),
            additional_text: String::new(),
            payment_provider_text: String::new(),
            payment_provider_stamp: "paid".to_owned(),
            footer_text: "Thanks".to_owned(),
            foreign_currency_display: None,
            foreign_currency_rate: None,
            foreign_currency_rate_date: None,
            foreign_currency_rate_source: None,
            created_at: Utc.timestamp_opt(0, 0).single().unwrap_or_default(),
        }
    }

    fn line(gross: i64, tax: i64, rate_bp: i32) -> invoice_line::Model {
        invoice_line::Model {
            id: 1,
            invoice_id: 1,
            position: 1,
            description: "Ticket <b>".to_owned(),
            gross_value_minor: gross,
            tax_value_minor: tax,
            tax_rate_bp: rate_bp,
            tax_name: "VAT".to_owned(),
            sub_event_id: None,
            event_date_from: None,
            event_date_to: None,
            event_location: None,
            product_id: Some(1),
            variation_id: None,
            attendee_name: Some("Ada".to_owned()),
        }
    }

    #[test]
    fn renders_escaped_text_totals_and_taxes() {
        let html = render(
            &invoice(false),
            &[line(11_900, 1_900, 1900), line(500, 0, 0)],
            None,
        );
        assert!(html.contains("<h1>Invoice CONF-00007</h1>"));
        assert!(html.contains("Org &lt;script&gt;<br>Main Street 1"));
        assert!(html.contains("Ada &amp; Co"));
        assert!(html.contains("Ticket &lt;b&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("124.00 EUR"), "total of both lines");
        assert!(html.contains("<td>VAT 19 %</td><td class=\"amount\">100.00 EUR</td>"));
        assert!(html.contains("class=\"stamp\""));
    }

    #[test]
    fn a_cancellation_names_what_it_cancels() {
        let html = render(
            &invoice(true),
            &[line(-11_900, -1_900, 1900)],
            Some("CONF-00006"),
        );
        assert!(html.contains("<h1>Cancellation CONF-00007</h1>"));
        assert!(html.contains("Cancels invoice CONF-00006"));
        assert!(html.contains("-119.00 EUR"));
    }

    #[test]
    fn rates_print_without_trailing_zeros() {
        assert_eq!(rate(1900), "19 %");
        assert_eq!(rate(750), "7.5 %");
        assert_eq!(rate(0), "0 %");
    }
}
