//! The `#[budget]` attribute of [allocscope](https://docs.rs/allocscope),
//! re-exported there as `allocscope::budget` (default feature `macros`):
//! use it from there.
//!
//! It turns a function's body into the closure of an
//! `allocscope::Budget`: the limits are the attribute's arguments, and a
//! failure panics with `Budget::assert`'s message, located at the
//! attribute.
//!
//! | function | what runs |
//! |---|---|
//! | `fn` | `Budget::new()...assert(|| body)` |
//! | `fn` with `warmups` or `max_leaked_bytes` | `Budget::new()...assert_steady(|| body)` (the body runs `warmups + 1` times and must return `()`) |
//! | `async fn` | `Budget::new()...check_async(async body).await`, panicking on `Err` |
//!
//! With `#[tokio::test]`, either order works: above it, the attribute
//! wraps the `async fn`; below it, it finds the future `tokio::test` built
//! (`let body = async { .. };`) and wraps that, so the runtime's own set-up
//! is never counted.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ItemFn, Local, MetaNameValue, Pat, Stmt, Token};

/// The arguments the attribute takes, in the order they are applied.
const KEYS: [&str; 5] = ["max_allocs", "max_bytes_allocated", "max_peak_bytes", "max_leaked_bytes", "warmups"];

/// Runs the function's body under an allocation budget: see the crate
/// documentation, and `allocscope::budget` for examples.
#[proc_macro_attribute]
pub fn budget(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.into_compile_error().into(),
    }
}

fn expand(args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let attr_span = args.clone().into_iter().next().map_or_else(Span::call_site, |t| t.span());
    let args = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
    let mut limits = Vec::new();
    for arg in &args {
        let path = &arg.path;
        let key = quote!(#path).to_string().replace(' ', "");
        if !KEYS.contains(&key.as_str()) {
            return Err(syn::Error::new_spanned(
                path,
                format!("unknown budget `{key}`: expected one of {}", KEYS.join(", ")),
            ));
        }
        if limits.iter().any(|(k, _): &(String, &Expr)| *k == key) {
            return Err(syn::Error::new_spanned(&arg.path, format!("`{key}` is given twice")));
        }
        limits.push((key, &arg.value));
    }
    if limits.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            format!("a budget needs at least one limit: {}", KEYS[..4].join(", ")),
        ));
    }
    let steady = limits.iter().any(|(k, _)| k == "warmups" || k == "max_leaked_bytes");
    let calls = limits.iter().map(|(k, v)| {
        let k = syn::Ident::new(k, Span::call_site());
        quote!(.#k(#v))
    });
    let budget = quote_spanned!(attr_span=> ::allocscope::macro_support::attribute_budget() #(#calls)*);

    let mut f: ItemFn = syn::parse2(item)?;
    let block = f.block.clone();
    if f.sig.asyncness.is_some() {
        if steady {
            return Err(steady_async_error(attr_span));
        }
        let body = async_check(&budget, quote!(async move #block), attr_span);
        f.block = syn::parse2(quote!({ #body }))?;
        return Ok(quote!(#f));
    }
    // Below `#[tokio::test]`: a sync function whose first statement is the
    // future `tokio::test` built. Wrap the future, not the runtime.
    if let Some(Stmt::Local(Local { pat: Pat::Ident(name), init: Some(init), .. })) = f.block.stmts.first_mut() {
        if name.ident == "body" && matches!(*init.expr, Expr::Async(_)) {
            if steady {
                return Err(steady_async_error(attr_span));
            }
            let future = &init.expr;
            let wrapped = async_check(&budget, quote!(#future), attr_span);
            *init.expr = syn::parse2(quote!(async move { #wrapped }))?;
            return Ok(quote!(#f));
        }
    }
    let ret = match &f.sig.output {
        syn::ReturnType::Default => quote!(),
        syn::ReturnType::Type(_, ty) => quote!(-> #ty),
    };
    let body = if steady {
        if !ret.is_empty() {
            return Err(syn::Error::new_spanned(
                &f.sig.output,
                "with `warmups` or `max_leaked_bytes` the body runs several times and its value is dropped: \
                 the function must return ()",
            ));
        }
        quote_spanned!(attr_span=> #budget.assert_steady(|| #block))
    } else {
        quote_spanned!(attr_span=> #budget.assert(move || #ret #block))
    };
    f.block = syn::parse2(quote!({ #body }))?;
    Ok(quote!(#f))
}

fn async_check(budget: &TokenStream2, future: TokenStream2, span: Span) -> TokenStream2 {
    quote_spanned! {span=>
        match #budget.check_async(#future).await {
            ::core::result::Result::Ok(value) => value,
            ::core::result::Result::Err(exceeded) => ::core::panic!("{}", exceeded),
        }
    }
}

fn steady_async_error(span: Span) -> syn::Error {
    syn::Error::new(
        span,
        "`warmups` and `max_leaked_bytes` are for synchronous tests (`Budget::check_steady`); \
         an async test's budget counts its task wherever it runs, once",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(tokens: TokenStream2) -> String {
        tokens.to_string().replace(' ', "")
    }

    fn error(args: TokenStream2, item: TokenStream2) -> String {
        expand(args, item).expect_err("refused").to_string()
    }

    #[test]
    fn unknown_repeated_or_missing_limits_are_refused_with_the_valid_keys() {
        let item = quote!(
            fn t() {}
        );
        assert_eq!(
            error(quote!(max_alocs = 1), item.clone()),
            "unknown budget `max_alocs`: expected one of max_allocs, max_bytes_allocated, max_peak_bytes, max_leaked_bytes, warmups"
        );
        assert_eq!(
            error(quote!(max_bytes_allocated = 1, max_bytes_allocated = 2), item.clone()),
            "`max_bytes_allocated` is given twice"
        );
        assert_eq!(
            error(quote!(), item.clone()),
            "a budget needs at least one limit: max_allocs, max_bytes_allocated, max_peak_bytes, max_leaked_bytes"
        );
        assert!(error(quote!(max_allocs), item).contains("expected `=`"));
    }

    #[test]
    fn steady_budgets_need_a_synchronous_function_returning_unit() {
        assert!(error(
            quote!(warmups = 1),
            quote!(
                async fn t() {}
            )
        )
        .starts_with("`warmups` and `max_leaked_bytes` are for synchronous tests"));
        assert!(error(
            quote!(max_leaked_bytes = 0),
            quote!(
                fn t() -> u32 {
                    1
                }
            )
        )
        .ends_with("the function must return ()"));
    }

    #[test]
    fn the_body_becomes_the_budgets_closure() {
        let out = expand(
            quote!(max_allocs = 2, max_bytes_allocated = 64),
            quote!(
                fn t() -> u8 {
                    1
                }
            ),
        )
        .unwrap();
        assert_eq!(
            compact(out),
            compact(quote!(
                fn t() -> u8 {
                    ::allocscope::macro_support::attribute_budget()
                        .max_allocs(2)
                        .max_bytes_allocated(64)
                        .assert(move || -> u8 { 1 })
                }
            ))
        );
        let out = expand(
            quote!(warmups = 1, max_leaked_bytes = 0),
            quote!(
                fn t() {
                    work()
                }
            ),
        )
        .unwrap();
        assert_eq!(
            compact(out),
            // Braces, not parentheses: rustfmt leaves the expected tokens
            // as written (it rewrote `|| { work() }` inside `quote!(..)`).
            compact(quote! {
                fn t() {
                    ::allocscope::macro_support::attribute_budget()
                        .warmups(1)
                        .max_leaked_bytes(0)
                        .assert_steady(|| { work() })
                }
            })
        );
    }
}
