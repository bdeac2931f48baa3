/** Messages of one feature, kept apart so features land without touching each other's text. */
const en = {
  sso: {
    signInWith: 'Sign in with {name}',
    or: 'or',
    redirecting: 'Taking you to {name}…',
    errors: {
      oidc_failed:
        'Signing in with {name} did not work: the answer was not for this sign-in, or it expired. Please try again.',
      oidc_unavailable:
        '{name} cannot be reached right now. Try again in a moment, or sign in with your password.',
      signup_closed:
        'There is no account for you on this server yet. Ask an administrator to create one and link it to your {name} account.',
      account_disabled: 'Your account is disabled. Ask an administrator.',
      not_found: 'Single sign-on is not set up on this server.',
      unknown: 'Signing in with {name} did not work ({code}).',
    },
  },
  /** Accounts an administrator turned off, and accounts whose password is the LDAP directory's. */
  accounts: {
    disabledTag: 'Disabled',
    directoryTag: 'Directory',
    directoryHint: 'Signs in with the password of the LDAP directory',
    disable: 'Disable',
    enable: 'Enable',
    confirmDisable:
      'Disable {name}? They are signed out everywhere at once, and neither their password nor their app passwords work until the account is enabled again.',
    disabledDone: '{name} is disabled',
    enabledDone: '{name} is enabled again',
    errors: {
      account_disabled: 'This account is disabled. Ask an administrator to enable it.',
      directory_unavailable:
        'The sign-in directory (LDAP) is not answering, so your password cannot be checked. Try again in a moment.',
    },
  },
};

const zhCN: typeof en = {
  sso: {
    signInWith: '使用 {name} 登录',
    or: '或',
    redirecting: '正在前往 {name}…',
    errors: {
      oidc_failed: '使用 {name} 登录未成功：该响应不属于本次登录，或已过期。请重试。',
      oidc_unavailable: '暂时无法连接 {name}。请稍后再试，或使用密码登录。',
      signup_closed: '此服务器上还没有你的账户。请联系管理员创建账户，并将其关联到你的 {name} 账户。',
      account_disabled: '你的账户已被停用。请联系管理员。',
      not_found: '此服务器未设置单点登录。',
      unknown: '使用 {name} 登录未成功（{code}）。',
    },
  },
  accounts: {
    disabledTag: '已停用',
    directoryTag: '目录',
    directoryHint: '使用 LDAP 目录的密码登录',
    disable: '停用',
    enable: '启用',
    confirmDisable:
      '停用 {name}？该用户会立即在所有设备上退出登录，且在重新启用之前，其密码和应用密码都无法使用。',
    disabledDone: '已停用 {name}',
    enabledDone: '已重新启用 {name}',
    errors: {
      account_disabled: '此账户已被停用。请联系管理员重新启用。',
      directory_unavailable: '登录目录（LDAP）没有响应，暂时无法验证你的密码。请稍后再试。',
    },
  },
};

export default { en, 'zh-CN': zhCN };
