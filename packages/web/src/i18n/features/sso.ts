/** Messages of one feature, kept apart so features land without touching each other's text. */
const en = {
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
