//! Reading the request's principal inside resolvers.

use async_graphql::Context;

use super::Principal;

/// The principal of the request; anonymous when none was attached.
pub fn principal<'a>(ctx: &'a Context<'_>) -> &'a Principal {
    static ANONYMOUS: Principal = Principal::Anonymous;
    ctx.data_opt::<Principal>().unwrap_or(&ANONYMOUS)
}
