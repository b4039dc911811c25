//! Built-in channels. Field names follow each platform's public payload format.
use super::*;
use crate::standardize::time::EpochUnit;
use chrono_tz::Tz;

/// Normalizes a payload of a built-in channel; None when `channel` is not built in.
pub fn builtin(channel: &str, root: &Node) -> Option<Result<Order>> {
    Some(match channel {
        "shopify" => shopify(root),
        "woocommerce" => woocommerce(root),
        "amazon" => amazon(root),
        "pos" => pos(root),
        "web" => web(root),
        "mobile" => mobile(root),
        _ => return None,
    })
}

/// Where each built-in channel keeps its lines (used when a mapping overrides line fields).
pub fn lines_path(channel: &str) -> Option<&'static str> {
    Some(match channel {
        "shopify" | "woocommerce" => "$.line_items",
        "amazon" => "$.OrderItems",
        "pos" => "$.lines",
        "web" => "$.cart.items",
        "mobile" => "$.basket.lines",
        _ => return None,
    })
}

fn set_amounts(o: &mut Order, subtotal: Option<i64>, discount: Option<i64>, shipping: Option<i64>, tax: Option<i64>, total: Option<i64>) {
    if let Some(v) = subtotal {
        o.subtotal_minor = v;
    }
    o.discount_minor = discount.unwrap_or(0);
    o.shipping_minor = shipping.unwrap_or(0);
    o.tax_minor = tax.unwrap_or(0);
    if let Some(v) = total {
        o.total_minor = v;
    }
}

/// Shopify order webhook (`orders/create`, `orders/updated`), REST Admin API order resource.
fn shopify(r: &Node) -> Result<Order> {
    let external_id = r.get("id").required_id("order id")?;
    let cust = r.get("customer");
    let customer_id = cust.get("id").required_id("customer id")?;
    let placed = r.get_any(&["processed_at", "created_at"]);
    let placed_at = required(timestamp(&placed, Tz::UTC, EpochUnit::Auto)?, &placed, "created_at")?;
    let cur = currency(&r.get("currency"))?;
    let mut o = blank("shopify", external_id, customer_id, placed_at, &cur);
    let ship_set = r.get("total_shipping_price_set");
    let shipping = ship_set.get("shop_money");
    set_amounts(
        &mut o,
        amount(&r.get("subtotal_price"), &cur)?,
        amount(&r.get("total_discounts"), &cur)?,
        amount(&shipping, &cur)?,
        amount(&r.get("total_tax"), &cur)?,
        amount(&r.get("total_price"), &cur)?,
    );
    let fin = r.get("financial_status");
    o.status = if !r.get("cancelled_at").is_null() {
        Status::Cancelled
    } else {
        match fin.text()?.unwrap_or("paid") {
            "pending" | "authorized" => Status::Pending,
            "refunded" => Status::Refunded,
            "voided" => Status::Cancelled,
            "paid" | "partially_paid" | "partially_refunded" => match r.get("fulfillment_status").text()? {
                Some("fulfilled") => Status::Shipped,
                _ => Status::Paid,
            },
            other => {
                return Err(fin
                    .err(ErrorKind::InvalidParameter, format!("financial_status {} is not a Shopify status", show(other)))
                    .hint("Shopify financial statuses: pending, authorized, partially_paid, paid, partially_refunded, refunded, voided"))
            }
        }
    };
    let ship = r.get("shipping_address");
    let bill = r.get("billing_address");
    o.country = country(&ship.get("country_code"))?.or(country(&bill.get("country_code"))?);
    o.email = email(&r.get("email"))?.or(email(&cust.get("email"))?);
    let ship_lines = r.get("shipping_lines");
    let first_ship = ship_lines.index(0);
    o.delivery_speed = delivery(&first_ship.get("code"))?.or(delivery(&first_ship.get("title"))?);
    let lines = r.get("line_items");
    for l in lines.elements()? {
        let title = l.get("title").free_text()?;
        let variant_title = l.get("variant_title");
        let vt = variant_title.text()?.unwrap_or("");
        let (size, color) = options(vt.split(" / "));
        let item_id = match l.get("sku").id()? {
            Some(s) => s,
            None => l.get_any(&["variant_id", "product_id"]).required_id("sku or variant_id")?,
        };
        o.lines.push(Line {
            line_no: 0,
            item_id,
            group_id: l.get("product_id").id()?,
            title,
            qty: quantity(&l.get("quantity"))?,
            unit_price_minor: required(amount(&l.get("price"), &cur)?, &l.get("price"), "price")?,
            discount_minor: amount(&l.get("total_discount"), &cur)?.unwrap_or(0),
            size,
            color,
        });
    }
    Ok(o)
}

/// WooCommerce REST API v3 order.
fn woocommerce(r: &Node) -> Result<Order> {
    let external_id = r.get("id").required_id("order id")?;
    let cust = r.get("customer_id");
    let customer_id = match cust.id()? {
        Some(c) if c != "0" => c,
        _ => {
            return Err(cust
                .err(ErrorKind::InvalidParameter, "missing customer id (0 is a guest checkout)")
                .hint("guest orders cannot be attributed to a customer; map billing.email with reco.channel_mappings to use it as the customer id"))
        }
    };
    // date_created_gmt is UTC without a designator; date_created is the site's local time.
    let gmt = r.get("date_created_gmt");
    let placed_at = match timestamp(&gmt, Tz::UTC, EpochUnit::Auto)? {
        Some(t) => t,
        None => {
            let local = r.get("date_created");
            required(timestamp(&local, Tz::UTC, EpochUnit::Auto)?, &local, "date_created_gmt")?
        }
    };
    let cur = currency(&r.get("currency"))?;
    let mut o = blank("woocommerce", external_id, customer_id, placed_at, &cur);
    set_amounts(
        &mut o,
        None,
        amount(&r.get("discount_total"), &cur)?,
        amount(&r.get("shipping_total"), &cur)?,
        amount(&r.get("total_tax"), &cur)?,
        amount(&r.get("total"), &cur)?,
    );
    let st = r.get("status");
    o.status = match st.text()?.unwrap_or("processing") {
        "pending" | "on-hold" | "checkout-draft" => Status::Pending,
        "processing" => Status::Paid,
        "completed" => Status::Shipped,
        "cancelled" | "failed" | "trash" => Status::Cancelled,
        "refunded" => Status::Refunded,
        other => {
            return Err(st
                .err(ErrorKind::InvalidParameter, format!("status {} is not a WooCommerce order status", show(other)))
                .hint("WooCommerce statuses: pending, processing, on-hold, completed, cancelled, refunded, failed, trash, checkout-draft"))
        }
    };
    let (ship, bill) = (r.get("shipping"), r.get("billing"));
    o.country = country(&ship.get("country"))?.or(country(&bill.get("country"))?);
    o.email = email(&bill.get("email"))?;
    let ship_lines = r.get("shipping_lines");
    let first_ship = ship_lines.index(0);
    o.delivery_speed = delivery(&first_ship.get("method_id"))?.or(delivery(&first_ship.get("method_title"))?);
    let lines = r.get("line_items");
    for l in lines.elements()? {
        let qty = quantity(&l.get("quantity"))?;
        // unit price: the pre-discount subtotal divided by quantity when exact, else `price`
        let subtotal = amount(&l.get("subtotal"), &cur)?;
        let unit = match subtotal {
            Some(s) if s % i64::from(qty) == 0 => s / i64::from(qty),
            _ => required(amount(&l.get("price"), &cur)?, &l.get("price"), "price")?,
        };
        let total = amount(&l.get("total"), &cur)?;
        let discount = match (subtotal, total) {
            (Some(s), Some(t)) if s >= t => s - t,
            _ => 0,
        };
        let meta = l.get("meta_data");
        let mut opts: Vec<String> = Vec::new();
        let (mut size, mut color) = (None, None);
        for m in meta.elements()? {
            let key = m.get("key").text()?.unwrap_or("").to_ascii_lowercase();
            let v = m.get_any(&["display_value", "value"]);
            match key.trim_start_matches("pa_") {
                "size" | "groesse" | "größe" | "taille" => size = lenient_size(&v)?,
                "color" | "colour" | "farbe" | "couleur" => color = lenient_color(&v)?,
                _ => opts.extend(v.text()?.map(str::to_string)),
            }
        }
        let (s2, c2) = options(opts.iter().map(String::as_str));
        let item_id = match l.get("sku").id()? {
            Some(s) => s,
            None => match l.get("variation_id").id()? {
                Some(v) if v != "0" => v,
                _ => l.get("product_id").required_id("sku or product_id")?,
            },
        };
        o.lines.push(Line {
            line_no: 0,
            item_id,
            group_id: l.get("product_id").id()?,
            title: l.get("name").free_text()?,
            qty,
            unit_price_minor: unit,
            discount_minor: discount,
            size: size.or(s2),
            color: color.or(c2),
        });
    }
    Ok(o)
}

/// Amazon SP-API: the `getOrder` order object with `getOrderItems`' `OrderItems` merged in.
/// `{"payload": {...}}` wrappers are accepted on the order and as `{"order":…, "items":…}`.
fn amazon(root: &Node) -> Result<Order> {
    let wrapped_order = root.get("order");
    let (order, items_root) = if wrapped_order.is_null() { (*root, *root) } else { (wrapped_order, root.get("items")) };
    let inner = order.get("payload");
    let r = if inner.is_null() { order } else { inner };
    let items_payload = items_root.get("payload");
    let items_src = if items_payload.is_null() { items_root } else { items_payload };
    amazon_order(&r, &items_src)
}

fn amazon_order(r: &Node, items_src: &Node) -> Result<Order> {
    let external_id = r.get("AmazonOrderId").required_id("AmazonOrderId")?;
    let buyer = r.get("BuyerInfo");
    let customer_id = buyer.get("BuyerEmail").required_id("BuyerInfo.BuyerEmail")?.to_lowercase();
    let pd = r.get("PurchaseDate");
    let placed_at = required(timestamp(&pd, Tz::UTC, EpochUnit::Auto)?, &pd, "PurchaseDate")?;
    let total = r.get("OrderTotal");
    let cur_node = total.get("CurrencyCode");
    let cur = if cur_node.is_null() {
        // an order without a total (Pending) takes the currency of its first item
        let items = items_src.get("OrderItems");
        let first = items.index(0);
        let price = first.get("ItemPrice");
        currency(&price.get("CurrencyCode"))?
    } else {
        currency(&cur_node)?
    };
    let mut o = blank("amazon", external_id, customer_id.clone(), placed_at, &cur);
    o.email = Some(customer_id).filter(|e| e.contains('@'));
    o.total_minor = amount(&total, &cur)?.unwrap_or(i64::MIN);
    let st = r.get("OrderStatus");
    o.status = match st.text()?.unwrap_or("Unshipped") {
        "Pending" | "PendingAvailability" => Status::Pending,
        "Unshipped" | "PartiallyShipped" | "InvoiceUnconfirmed" => Status::Paid,
        "Shipped" => Status::Shipped,
        "Canceled" | "Unfulfillable" => Status::Cancelled,
        other => {
            return Err(st
                .err(ErrorKind::InvalidParameter, format!("OrderStatus {} is not an Amazon order status", show(other)))
                .hint("Amazon statuses: Pending, PendingAvailability, Unshipped, PartiallyShipped, Shipped, InvoiceUnconfirmed, Canceled, Unfulfillable"))
        }
    };
    let addr = r.get("ShippingAddress");
    o.country = country(&addr.get("CountryCode"))?;
    o.delivery_speed = delivery(&r.get("ShipmentServiceLevelCategory"))?;
    let (mut tax, mut ship, mut disc) = (0i64, 0i64, 0i64);
    let items = items_src.get("OrderItems");
    for l in items.elements()? {
        let qty = quantity(&l.get("QuantityOrdered"))?;
        // ItemPrice is the price of the whole line (unit price × quantity)
        let line_total = required(amount(&l.get("ItemPrice"), &cur)?, &l.get("ItemPrice"), "ItemPrice")?;
        let q = i64::from(qty);
        let unit = (line_total + q / 2) / q;
        tax += amount(&l.get("ItemTax"), &cur)?.unwrap_or(0);
        ship += amount(&l.get("ShippingPrice"), &cur)?.unwrap_or(0);
        let d = amount(&l.get("PromotionDiscount"), &cur)?.unwrap_or(0);
        disc += d;
        let title = l.get("Title").free_text()?;
        let (size, color) = options(title.as_deref().map(|t| t.split([',', '-', '(', ')'])).into_iter().flatten().map(str::trim));
        o.lines.push(Line {
            line_no: 0,
            item_id: l.get("SellerSKU").id()?.map_or_else(|| l.get("ASIN").required_id("SellerSKU or ASIN"), Ok)?,
            group_id: l.get("ASIN").id()?,
            title,
            qty,
            unit_price_minor: unit,
            discount_minor: d,
            size,
            color,
        });
    }
    o.tax_minor = tax;
    o.shipping_minor = ship;
    o.discount_minor = disc;
    Ok(o)
}

/// Store point of sale: local wall-clock time with the store's IANA zone, amounts in cents.
fn pos(r: &Node) -> Result<Order> {
    let store = r.get("store");
    let store_id = store.get("id").required_id("store id")?;
    let receipt = r.get_any(&["receipt_id", "receipt_no"]).required_id("receipt_id")?;
    let tzn = store.get("timezone");
    let zone_name = required(tzn.text()?, &tzn, "store time zone")?;
    let zone = time::zone(zone_name).map_err(|e| e.at(tzn.path()))?;
    let ts = r.get_any(&["local_time", "timestamp"]);
    let placed_at = required(timestamp(&ts, zone, EpochUnit::Auto)?, &ts, "local_time")?;
    let cust = r.get("customer");
    let customer_id = cust.get_any(&["id", "loyalty_id"]).required_id("customer id or loyalty_id")?;
    let cur = currency(&r.get("currency"))?;
    let mut o = blank("pos", format!("{store_id}:{receipt}"), customer_id, placed_at, &cur);
    let t = r.get("totals");
    set_amounts(
        &mut o,
        minor_units(&t.get("subtotal_cents"))?,
        minor_units(&t.get("discount_cents"))?,
        Some(0),
        minor_units(&t.get("tax_cents"))?,
        minor_units(&t.get("total_cents"))?,
    );
    o.status = match r.get("status").text()? {
        None => Status::Delivered,
        Some(s) => match s.to_ascii_lowercase().as_str() {
            "completed" | "paid" | "closed" => Status::Delivered,
            _ => Status::parse(s).map_err(|e| e.at(r.get("status").path()))?,
        },
    };
    o.country = country(&store.get("country"))?;
    o.email = email(&cust.get("email"))?;
    let lines = r.get("lines");
    for l in lines.elements()? {
        let price = l.get("unit_price_cents");
        o.lines.push(Line {
            line_no: 0,
            item_id: l.get("sku").required_id("sku")?,
            group_id: l.get("product_id").id()?,
            title: l.get("description").free_text()?,
            qty: quantity(&l.get("qty"))?,
            unit_price_minor: required(minor_units(&price)?, &price, "unit_price_cents")?,
            discount_minor: minor_units(&l.get("discount_cents"))?.unwrap_or(0),
            size: lenient_size(&l.get("size"))?,
            color: lenient_color(&l.get("color"))?,
        });
    }
    Ok(o)
}

/// Our own web storefront: epoch milliseconds, nested cart with decimal prices.
fn web(r: &Node) -> Result<Order> {
    let external_id = r.get("id").required_id("order id")?;
    let customer_id = r.get("customer_id").required_id("customer_id")?;
    let ts = r.get("created_ms");
    let placed_at = required(timestamp(&ts, Tz::UTC, EpochUnit::Millis)?, &ts, "created_ms")?;
    let cur = currency(&r.get("currency"))?;
    let mut o = blank("web", external_id, customer_id, placed_at, &cur);
    let cart = r.get("cart");
    let t = cart.get("totals");
    set_amounts(
        &mut o,
        amount(&t.get("subtotal"), &cur)?,
        amount(&t.get("discount"), &cur)?,
        amount(&t.get("shipping"), &cur)?,
        amount(&t.get("tax"), &cur)?,
        amount(&t.get("total"), &cur)?,
    );
    if let Some(s) = r.get("status").text()? {
        o.status = Status::parse(s).map_err(|e| e.at(r.get("status").path()))?;
    }
    let addr = r.get("shipping_address");
    o.country = country(&addr.get("country"))?;
    o.email = email(&r.get("email"))?;
    let shipping = r.get("shipping");
    o.delivery_speed = delivery(&shipping.get("method"))?;
    let items = cart.get("items");
    for l in items.elements()? {
        let opts = l.get("options");
        let price = l.get("unit_price");
        o.lines.push(Line {
            line_no: 0,
            item_id: l.get("sku").required_id("sku")?,
            group_id: l.get("product_id").id()?,
            title: l.get("title").free_text()?,
            qty: quantity(&l.get("quantity"))?,
            unit_price_minor: required(amount(&price, &cur)?, &price, "unit_price")?,
            discount_minor: amount(&l.get("discount"), &cur)?.unwrap_or(0),
            size: lenient_size(&opts.get("size"))?,
            color: lenient_color(&opts.get("color"))?,
        });
    }
    Ok(o)
}

/// Our own mobile app: camelCase, epoch milliseconds, a basket with price objects.
fn mobile(r: &Node) -> Result<Order> {
    let external_id = r.get("orderRef").required_id("orderRef")?;
    let customer_id = r.get("userId").required_id("userId")?;
    let ts = r.get("timestampMs");
    let placed_at = required(timestamp(&ts, Tz::UTC, EpochUnit::Millis)?, &ts, "timestampMs")?;
    let cur = currency(&r.get("currency"))?;
    let mut o = blank("mobile", external_id, customer_id, placed_at, &cur);
    let basket = r.get("basket");
    let s = basket.get("summary");
    set_amounts(
        &mut o,
        amount(&s.get("subtotal"), &cur)?,
        amount(&s.get("discount"), &cur)?,
        amount(&s.get("shipping"), &cur)?,
        amount(&s.get("tax"), &cur)?,
        amount(&s.get("total"), &cur)?,
    );
    if let Some(st) = r.get("status").text()? {
        o.status = Status::parse(st).map_err(|e| e.at(r.get("status").path()))?;
    }
    let addr = r.get("address");
    o.country = country(&addr.get("countryCode"))?;
    let delivery_node = r.get("delivery");
    o.delivery_speed = delivery(&delivery_node.get("speed"))?;
    o.email = email(&r.get("email"))?;
    let lines = basket.get("lines");
    for l in lines.elements()? {
        let variant = l.get("variant");
        let price = l.get("price");
        o.lines.push(Line {
            line_no: 0,
            item_id: l.get("sku").required_id("sku")?,
            group_id: l.get("productId").id()?,
            title: l.get("name").free_text()?,
            qty: quantity(&l.get("qty"))?,
            unit_price_minor: required(amount(&price, &cur)?, &price, "price")?,
            discount_minor: amount(&l.get("discount"), &cur)?.unwrap_or(0),
            size: lenient_size(&variant.get("size"))?,
            color: lenient_color(&variant.get("color"))?,
        });
    }
    Ok(o)
}
